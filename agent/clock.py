"""Time for the whole agent: monotonic frame times, conversion to timezone-aware UTC in one place.

Passed explicitly to every stage so tests can drive time with ManualClock instead of sleeping.
"""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime
from typing import Protocol


class Clock(Protocol):
    def monotonic(self) -> float: ...
    def time(self) -> float: ...
    def now(self) -> datetime: ...
    def sleep(self, seconds: float) -> None: ...


class SystemClock:
    """The real clocks of the machine."""

    def monotonic(self) -> float:
        return time.monotonic()

    def time(self) -> float:
        return time.time()

    def now(self) -> datetime:
        return datetime.now(UTC)

    def sleep(self, seconds: float) -> None:
        time.sleep(max(0.0, seconds))


class ManualClock:
    """A clock that moves only when told: `advance()`, or `set_wall()` to simulate a clock jump.

    sleep() advances the clock instead of waiting, so code under test runs instantly.
    """

    def __init__(self, wall: float = 1_767_225_600.0, mono: float = 1000.0) -> None:
        self._lock = threading.Lock()
        self._wall = wall
        self._mono = mono

    def monotonic(self) -> float:
        with self._lock:
            return self._mono

    def time(self) -> float:
        with self._lock:
            return self._wall

    def now(self) -> datetime:
        return datetime.fromtimestamp(self.time(), UTC)

    def advance(self, seconds: float) -> None:
        with self._lock:
            self._mono += seconds
            self._wall += seconds

    def set_wall(self, wall: float) -> None:
        """Jump the wall clock (NTP step) without moving monotonic time."""
        with self._lock:
            self._wall = wall

    def sleep(self, seconds: float) -> None:
        self.advance(max(0.0, seconds))


def to_utc(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, UTC)


def iso_utc(ts: float) -> str:
    """RFC 3339 UTC with milliseconds and a Z, the one text form of time in files and messages."""
    return to_utc(ts).isoformat(timespec="milliseconds").replace("+00:00", "Z")
