"""Identifier patterns shared by the unit, the control room and provisioning (one copy of each).

Used by config validation on the unit, the unit API's models and provisioning's IAM policy prefixes.
"""

from __future__ import annotations

import re

UNIT_ID = re.compile(r"^[a-z0-9][a-z0-9-]{1,62}$")  # also an S3 key segment and an IAM user suffix
EVENT_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$")
INSTRUCTION_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$")
S3_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
S3_KEY = re.compile(r"^[A-Za-z0-9!_.*'()/-]{1,1024}$")
SHA256_HEX = re.compile(r"^[0-9a-f]{64}$")
# No control characters (C0, DEL, C1) and no bidirectional overrides, which make shown text lie.
PRINTABLE = re.compile(r"^[^\x00-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069]*$")

_DESCRIPTIONS = {
    UNIT_ID.pattern: "lower-case letters, digits and '-', 2-63 characters",
    EVENT_ID.pattern: "letters, digits and . _ : -, up to 128 characters",
    INSTRUCTION_ID.pattern: "letters, digits and . _ : -, up to 64 characters",
    S3_BUCKET.pattern: "an S3 bucket name",
    S3_KEY.pattern: "an S3 key of safe characters",
    SHA256_HEX.pattern: "64 lower-case hex digits",
    PRINTABLE.pattern: "text without control characters",
}


def describe(pattern: re.Pattern[str]) -> str:
    """What a pattern allows, in words for an error message."""
    return _DESCRIPTIONS.get(pattern.pattern, f"must match {pattern.pattern}")


def unit_key_prefix(prefix: str, unit_id: str) -> str:
    """`<prefix>/<unit-id>/`: where a unit writes (provisioning's IAM policy, the agent's upload.prefix)."""
    return "/".join(p for p in (prefix.strip("/"), unit_id) if p) + "/"


def is_safe_key(key: str, unit_id: str, prefix: str = "units") -> bool:
    """An object key a unit may report: under its own prefix, safe characters, no '..' segments."""
    return (bool(S3_KEY.fullmatch(key)) and key.startswith(unit_key_prefix(prefix, unit_id))
            and ".." not in key.split("/"))
