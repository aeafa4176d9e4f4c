"""Time for the whole agent: monotonic frame times, conversion to timezone-aware UTC in one place.

Passed explicitly to every stage so tests can drive time with ManualClock instead of sleeping.
"""

from __future__ import annotations

import shutil
import subprocess
import threading
import time
from collections.abc import Callable
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


# --- clock-jump detection and sync state -------------------------------------------------------

SyncProbe = Callable[[], "bool | None"]


def probe_timedatectl(timeout_s: float = 2.0) -> bool | None:
    """NTP sync state from systemd (`timedatectl show -p NTPSynchronized`); None if unknown."""
    exe = shutil.which("timedatectl")
    if not exe:
        return None
    try:
        out = subprocess.run(
            [exe, "show", "-p", "NTPSynchronized", "--value"],
            capture_output=True, text=True, timeout=timeout_s, check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    value = out.stdout.strip().lower()
    return {"yes": True, "no": False}.get(value)


class ClockWatch:
    """A Clock whose wall time is monotonic time plus a tracked offset: the one mono -> UTC mapping.

    A step of the system clock (NTP correcting a Pi that booted with a stale time, a manual change)
    is seen as a change of (wall - monotonic) beyond `tolerance_s`; the offset then follows the new
    clock and `jumps` counts it. `not_before(ts)` refuses a clock that reads earlier than footage
    already recorded (a Pi without a real-time clock after a reboot): the offset is raised so times
    never run backwards across restarts, and the clock is marked unsynced until it is stepped or
    the probe (e.g. timedatectl, chrony) says it is synchronised. Thread-safe.
    """

    def __init__(
        self, clock: Clock, probe: SyncProbe | None = None,
        tolerance_s: float = 1.0, probe_interval_s: float = 60.0,
    ) -> None:
        self._clock = clock
        self._probe = probe
        self._tolerance = tolerance_s
        self._probe_interval = probe_interval_s
        self._lock = threading.Lock()
        self._raw_offset = clock.time() - clock.monotonic()
        self._offset = self._raw_offset
        self._stale = False
        self._jumps = 0
        self._last_jump = 0.0
        self._probed: bool | None = None
        self._probed_at: float | None = None

    def monotonic(self) -> float:
        return self._clock.monotonic()

    def time(self) -> float:
        mono = self._clock.monotonic()
        raw = self._clock.time() - mono
        with self._lock:
            if abs(raw - self._raw_offset) > self._tolerance:
                self._last_jump = raw - self._offset
                self._jumps += 1
                self._offset = raw
                self._stale = False
                self._probed_at = None  # probe again after a step
            self._raw_offset = raw
            return mono + self._offset

    def now(self) -> datetime:
        return to_utc(self.time())

    def sleep(self, seconds: float) -> None:
        self._clock.sleep(seconds)

    def not_before(self, ts: float) -> bool:
        """Raise the offset if the clock reads earlier than `ts`; return True if it did."""
        now = self.time()
        if now >= ts:
            return False
        with self._lock:
            self._offset += ts - now
            self._stale = True
        return True

    @property
    def offset(self) -> float:
        """Seconds to add to monotonic time to get UTC epoch seconds."""
        self.time()
        with self._lock:
            return self._offset

    @property
    def jumps(self) -> int:
        self.time()
        with self._lock:
            return self._jumps

    @property
    def last_jump_s(self) -> float:
        """Size of the last step seen (positive = forward), 0.0 if none."""
        with self._lock:
            return self._last_jump

    @property
    def synced(self) -> bool:
        """The probe's answer (asked at most every probe_interval_s); if unknown, not known stale."""
        self.time()
        mono = self._clock.monotonic()
        with self._lock:
            due = self._probe is not None and (
                self._probed_at is None or mono - self._probed_at >= self._probe_interval
            )
        if due and self._probe is not None:
            answer = self._probe()
            with self._lock:
                self._probed, self._probed_at = answer, mono
        with self._lock:
            if self._probed is not None:
                return self._probed
            return not self._stale


def is_synced(clock: Clock) -> bool:
    """Sync state of a clock: a ClockWatch knows; a plain clock is assumed synchronised."""
    return bool(getattr(clock, "synced", True))
