"""The control room's clock: the one source of "now" for every time it stores or compares.

create_app(clock=...) takes any object with now() -> aware UTC datetime (tests pass a manual clock);
code reads it through control_room.clock.now(), never datetime.now() directly.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Protocol


class Clock(Protocol):
    def now(self) -> datetime: ...


class SystemClock:
    """The machine's clock, as an aware UTC datetime."""

    def now(self) -> datetime:
        return datetime.now(UTC)


def now() -> datetime:
    """Now, from the current app's clock (app.extensions["cctv_clock"]); the system clock outside an app."""
    from flask import current_app, has_app_context

    if has_app_context():
        clock = current_app.extensions.get("cctv_clock")
        if clock is not None:
            return clock.now()
    return datetime.now(UTC)
