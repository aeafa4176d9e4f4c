"""What a name or identifier may contain, checked once at every way in (unit API, CLI, web forms).

Identifiers use a strict allow-list; display names allow ordinary punctuation but refuse markup,
quotes used in SQL and control characters, so a refused name is never stored anywhere.
"""

from __future__ import annotations

import re

from control_room.errors import BadName
from protocol.ids import EVENT_ID, INSTRUCTION_ID, S3_BUCKET, S3_KEY, UNIT_ID, is_safe_key, unit_key_prefix
from protocol.ids import describe as describe_wire

__all__ = ["EVENT_ID", "INSTRUCTION_ID", "S3_BUCKET", "S3_KEY", "UNIT_ID", "BadName", "check",
           "check_display_name", "describe", "is_safe_key", "unit_key_prefix"]

COUNCIL_SLUG = re.compile(r"^[a-z0-9][a-z0-9-]{1,62}$")
USERNAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{1,63}$")
DISPLAY_NAME = re.compile(r"^[\w][\w .,'\u2019&()/#+:!?@\u2013\u2014-]{0,199}$")


def check(pattern: re.Pattern[str], value: str, what: str) -> str:
    if not isinstance(value, str) or not pattern.fullmatch(value):
        raise BadName(f"{what} {value!r:.80} is not allowed ({describe(pattern)})")
    return value


def check_display_name(value: str, what: str = "name") -> str:
    value = value.strip() if isinstance(value, str) else value
    return check(DISPLAY_NAME, value, what)


def describe(pattern: re.Pattern[str]) -> str:
    return {
        USERNAME.pattern: "letters, digits and . _ @ -, 2-64 characters",
        DISPLAY_NAME.pattern: "letters, digits, spaces and . , ' & ( ) / # + : ! ? @ and dashes, "
                              "up to 200 characters",
    }.get(pattern.pattern) or describe_wire(pattern)
