"""What a name or identifier may contain, checked once at every way in (unit API, CLI, web forms).

Identifiers use a strict allow-list; display names allow ordinary punctuation but refuse markup,
quotes used in SQL and control characters, so a refused name is never stored anywhere.
"""

from __future__ import annotations

import re

UNIT_ID = re.compile(r"^[a-z0-9][a-z0-9-]{1,62}$")  # as agent/config.py unit.id
COUNCIL_SLUG = re.compile(r"^[a-z0-9][a-z0-9-]{1,62}$")
USERNAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{1,63}$")
EVENT_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$")
INSTRUCTION_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$")
DISPLAY_NAME = re.compile(r"^[\w][\w .,'\u2019&()/#+:!?@\u2013\u2014-]{0,199}$")
S3_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
S3_KEY = re.compile(r"^[A-Za-z0-9!_.*'()/-]{1,1024}$")


class BadName(ValueError):
    """A name or identifier that may not be stored; the message says which and why."""


def check(pattern: re.Pattern[str], value: str, what: str) -> str:
    if not isinstance(value, str) or not pattern.fullmatch(value):
        raise BadName(f"{what} {value!r:.80} is not allowed ({describe(pattern)})")
    return value


def check_display_name(value: str, what: str = "name") -> str:
    value = value.strip() if isinstance(value, str) else value
    return check(DISPLAY_NAME, value, what)


def describe(pattern: re.Pattern[str]) -> str:
    return {
        UNIT_ID.pattern: "lower-case letters, digits and '-', 2-63 characters",
        USERNAME.pattern: "letters, digits and . _ @ -, 2-64 characters",
        EVENT_ID.pattern: "letters, digits and . _ : -, up to 128 characters",
        INSTRUCTION_ID.pattern: "letters, digits and . _ : -, up to 64 characters",
        DISPLAY_NAME.pattern: "letters, digits, spaces and . , ' & ( ) / # + : ! ? @ and dashes, "
                              "up to 200 characters",
        S3_BUCKET.pattern: "an S3 bucket name",
        S3_KEY.pattern: "an S3 key of safe characters",
    }.get(pattern.pattern, f"must match {pattern.pattern}")


def unit_key_prefix(prefix: str, unit_id: str) -> str:
    """`<prefix>/<unit-id>/`: where a unit writes (provisioning/iam.py, the agent's upload.prefix)."""
    return "/".join(p for p in (prefix.strip("/"), unit_id) if p) + "/"


def is_safe_key(key: str, unit_id: str, prefix: str = "units") -> bool:
    """An object key a unit may report: under its own prefix, safe characters, no '..' segments."""
    return (bool(S3_KEY.fullmatch(key)) and key.startswith(unit_key_prefix(prefix, unit_id))
            and ".." not in key.split("/"))
