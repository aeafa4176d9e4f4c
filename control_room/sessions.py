"""People's sessions, kept in the database so each can be ended on its own: idle timeout and
absolute lifetime sized for a 12-hour shift, logout of one session or of all, and disabling a
person ends all of theirs at once. The signed cookie holds only a random id (hashed here).
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from control_room.models import User, UserSession

TOUCH_EVERY = timedelta(seconds=60)  # last_seen_at is written at most this often per session


@dataclass(frozen=True)
class Limits:
    idle: timedelta
    lifetime: timedelta


def _digest(sid: str) -> str:
    return hashlib.sha256(sid.encode()).hexdigest()


def begin(db: Session, user: User, now: datetime, ip: str, agent: str) -> str:
    """A new session for `user`; returns the id for the cookie (only its hash is stored)."""
    sid = secrets.token_urlsafe(32)
    db.add(UserSession(sid_hash=_digest(sid), user_id=user.id, created_at=now, last_seen_at=now,
                       ip=ip[:64], user_agent=agent[:200]))
    return sid


def resume(db: Session, sid: str | None, now: datetime,
           limits: Limits) -> tuple[UserSession | None, str | None]:
    """(the live session, None) or (None, why it is over: "ended", "idle", "expired", None if unknown)."""
    if not sid or not isinstance(sid, str):
        return None, None
    row = db.scalar(select(UserSession).where(UserSession.sid_hash == _digest(sid)))
    if row is None:
        return None, None
    if row.ended_at is not None:
        return None, row.ended_reason or "ended"
    reason = None
    if now - row.created_at > limits.lifetime:
        reason = "expired"
    elif now - row.last_seen_at > limits.idle:
        reason = "idle"
    if reason is not None:
        end(row, now, reason)
        return None, reason
    if now - row.last_seen_at >= TOUCH_EVERY:
        row.last_seen_at = now
    return row, None


def end(row: UserSession, now: datetime, reason: str) -> None:
    if row.ended_at is None:
        row.ended_at, row.ended_reason = now, reason[:32]


def end_all(db: Session, user_id: int, now: datetime, reason: str) -> int:
    """End every open session of a person (log out everywhere, disabled, password reset)."""
    result = db.execute(
        update(UserSession)
        .where(UserSession.user_id == user_id, UserSession.ended_at.is_(None))
        .values(ended_at=now, ended_reason=reason[:32])
        .execution_options(synchronize_session=False)
    )
    return int(getattr(result, "rowcount", 0) or 0)


def open_count(db: Session, user_id: int) -> int:
    rows = db.scalars(select(UserSession.id).where(UserSession.user_id == user_id,
                                                   UserSession.ended_at.is_(None)))
    return len(rows.all())
