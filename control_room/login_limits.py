"""Limits on guessing passwords: per address, per user name and per known device, with backoff
rather than a hard lock, so a stranger can slow guesses at a name but never lock its owner out.

Every failed attempt is a LoginFailure row (in the database, shared by every app process); a
device that has logged in as a user before carries a signed cookie and is judged on its own record.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from itsdangerous import BadSignature, URLSafeSerializer
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from control_room.errors import LoginThrottled
from control_room.models import LoginFailure

WINDOW = timedelta(minutes=15)
DEVICE_COOKIE = "cctv_device"
DEVICE_COOKIE_MAX_AGE_S = 400 * 86400


@dataclass(frozen=True)
class Rule:
    """`free` failures in WINDOW cost nothing; each further one must wait base * 2^k s, at most cap."""

    column: str
    free: int
    base_s: float
    cap_s: float

    def wait_s(self, failures: int, last: datetime | None, now: datetime) -> float:
        if failures < self.free or last is None:
            return 0.0
        delay = min(self.cap_s, self.base_s * 2 ** (failures - self.free))
        return max(0.0, delay - (now - last).total_seconds())


RULES = {
    "ip": Rule("ip", free=10, base_s=1.0, cap_s=300.0),  # spraying one password over many names
    "username": Rule("username", free=5, base_s=2.0, cap_s=300.0),  # guessing one person's password
    "device": Rule("device", free=5, base_s=2.0, cap_s=300.0),  # a known device judged on its own record
}


def _recent(db: Session, column: str, value: str, now: datetime) -> tuple[int, datetime | None]:
    col = getattr(LoginFailure, column)
    row = db.execute(
        select(func.count(), func.max(LoginFailure.at))
        .where(col == value, LoginFailure.at >= now - WINDOW, LoginFailure.throttled.is_(False))
    ).one()
    return int(row[0] or 0), row[1]


def check(db: Session, username: str, ip: str, device: str | None, now: datetime) -> None:
    """Raise LoginThrottled if this attempt must wait. A known device (for this name) is judged only
    on its own failures: a stranger's guesses from elsewhere or at the same name do not hold it back."""
    keys = {"device": device} if device else {"ip": ip, "username": username}
    for kind, value in keys.items():
        failures, last = _recent(db, kind, value, now)
        wait = RULES[kind].wait_s(failures, last, now)
        if wait > 0:
            what = {"ip": "from this address", "username": "for this user name",
                    "device": "on this device"}[kind]
            seconds = max(1, int(wait + 0.999))
            raise LoginThrottled(f"Too many failed log-ins {what}: try again in {seconds} s.", seconds)


def record(db: Session, username: str, ip: str, device: str | None, now: datetime,
           throttled: bool = False) -> LoginFailure:
    row = LoginFailure(at=now, username=username[:64], ip=ip[:64], device=device, throttled=throttled)
    db.add(row)
    return row


# ---------------------------------------------------------------- the known-device cookie
def _serializer(secret: str) -> URLSafeSerializer:
    return URLSafeSerializer(secret, salt="cctv-known-device")


def new_device_cookie(secret: str, user_id: int, device: str | None = None) -> tuple[str, str]:
    """(cookie value, device id) for a device that has just logged in as `user_id`."""
    device = device or secrets.token_hex(16)
    return _serializer(secret).dumps({"u": user_id, "d": device}), device


def known_device(secret: str, cookie: str | None, user_id: int | None) -> str | None:
    """The device id if the cookie is ours and was issued to this user, else None."""
    if not cookie or user_id is None:
        return None
    try:
        data = _serializer(secret).loads(cookie)
    except BadSignature:
        return None
    if not isinstance(data, dict) or data.get("u") != user_id or not isinstance(data.get("d"), str):
        return None
    return data["d"][:32]
