"""Time on the wire: RFC 3339 UTC with milliseconds and a Z, parsed and formatted in this one place.

Every message, record and manifest carries times in this form; naive times are refused, never guessed.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

RFC3339_Z = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,9})?Z$")
# Times outside these years are refused: year 1 or 9999 overflow when pages shift them to UK time.
EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
LATEST = datetime(2100, 1, 1, tzinfo=UTC)


def format_utc(value: float | datetime) -> str:
    """Epoch seconds or an aware datetime -> "YYYY-MM-DDTHH:MM:SS.mmmZ"."""
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise ValueError("naive datetime: the time zone is unknown")
        moment = value.astimezone(UTC)
    else:
        moment = datetime.fromtimestamp(value, UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def parse_utc(text: str) -> datetime:
    """The wire form exactly ("...Z", at most nanoseconds, 1970-2100) -> aware UTC datetime.

    Raises ValueError naming the rule broken."""
    if not isinstance(text, str) or not RFC3339_Z.fullmatch(text):
        raise ValueError("must be an RFC 3339 UTC time ending in Z")
    parsed = datetime.fromisoformat(text[:26].rstrip("Z") + "+00:00").astimezone(UTC)
    if not EARLIEST <= parsed < LATEST:
        raise ValueError("must be between 1970 and 2100")
    return parsed


def parse_aware(text: str) -> datetime:
    """Any ISO 8601 time with a zone ("Z" or an offset) -> aware UTC datetime; naive text is refused.

    For times read back from files, databases and other systems (gpsd, S3), which may use offsets."""
    parsed = datetime.fromisoformat(text.strip().replace("Z", "+00:00").replace("z", "+00:00"))
    if parsed.tzinfo is None:
        raise ValueError("time has no zone (add Z or an offset)")
    return parsed.astimezone(UTC)
