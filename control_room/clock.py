"""The control room's one clock: the source of "now" for sessions, login limits, audit times and
row defaults. create_app(clock=...) puts it on the app and on every database session
(session.info["clock"]); tests pass a manual clock. Nothing else reads the system clock.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Protocol

from sqlalchemy import event
from sqlalchemy.orm import Session


class Clock(Protocol):
    def now(self) -> datetime: ...


class SystemClock:
    """The machine's clock, as an aware UTC datetime."""

    def now(self) -> datetime:
        return datetime.now(UTC)


SYSTEM = SystemClock()
# NOT NULL columns filled from the session's clock when a new row leaves them empty ("created at").
STAMPED = ("created_at", "received_at", "updated_at", "token_created_at", "at", "started_at", "first_seen_at",
           "reported_at", "flagged_at")


def of_session(session: Session) -> Clock:
    return session.info.get("clock") or SYSTEM


def now(session: Session | None = None) -> datetime:
    """Now from the session's clock, else the current app's (app.extensions["cctv_clock"]), else the
    system clock (commands outside an app)."""
    if session is not None and session.info.get("clock") is not None:
        return session.info["clock"].now()
    from flask import current_app, has_app_context

    if has_app_context():
        clock = current_app.extensions.get("cctv_clock")
        if clock is not None:
            return clock.now()
    return SYSTEM.now()


@event.listens_for(Session, "before_flush")
def _stamp_new_rows(session: Session, _context: object, _instances: object) -> None:
    """Row defaults from the injected clock (a column default cannot see it)."""
    stamp: datetime | None = None
    for obj in session.new:
        columns = type(obj).__table__.columns
        for name in STAMPED:
            if name in columns and not columns[name].nullable and getattr(obj, name, None) is None:
                stamp = stamp or now(session)
                setattr(obj, name, stamp)
