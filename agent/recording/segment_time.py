"""Segment times for one recording run: monotonic frame times -> UTC, the one place they are decided.

Both recorders (software and picamera2 hardware) use it. A wall-clock step seen in the frames'
(wall - monotonic) offset re-times the run's published segments by the step, so times stay
contiguous; a clock that reads earlier than footage already recorded (stale clock after a reboot of
a Pi without a real-time clock) is held back and the footage flagged until the clock is stepped.
"""

from __future__ import annotations

import logging

from agent.clock import Clock, is_synced
from agent.recording.index import Segment, SegmentIndex

log = logging.getLogger(__name__)

JUMP_TOLERANCE_S = 1.0


class Timeline:
    """Called from one thread (the recorder's caller)."""

    def __init__(self, clock: Clock, index: SegmentIndex, run_id: str) -> None:
        self._clock = clock
        self._index = index
        self.run_id = run_id
        self._raw: float | None = None  # frame.wall - frame.t of the last frame
        self._adjust = 0.0  # added to the raw offset while the clock reads too early
        self.clamped = False
        latest = index.latest()
        self.prev_end: float | None = latest.end if latest else None  # end of the last segment
        if latest and hasattr(clock, "not_before"):
            clock.not_before(latest.end)

    def step_seen(self, wall: float, mono: float) -> float | None:
        """Feed each frame's times; returns the size of a clock step if one just happened."""
        raw = wall - mono
        prev, self._raw = self._raw, raw
        if prev is not None and abs(raw - prev) > JUMP_TOLERANCE_S:
            return raw - (prev + self._adjust)
        return None

    def apply_step(self, delta: float) -> None:
        """After the caller has indexed what was recorded before the step: shift this run."""
        self._adjust, self.clamped = 0.0, False
        moved = self._index.retime(self.run_id, delta)
        if self.prev_end is not None and moved:
            self.prev_end += delta
        log.warning("wall clock stepped by %+.1f s: %d segment(s) of this run re-timed", delta, moved)

    def offset_for(self, mono_start: float) -> float:
        """wall = mono + offset for a segment starting at mono_start; never before prev_end."""
        raw = self._raw if self._raw is not None else self._clock.time() - self._clock.monotonic()
        offset = raw + self._adjust
        if self.prev_end is not None and mono_start + offset < self.prev_end:
            short = self.prev_end - (mono_start + offset)
            if short > JUMP_TOLERANCE_S:
                self._adjust += short
                self.clamped = True
                log.warning("clock reads %.0f s before the last recorded footage; footage flagged", short)
            offset += short
        return offset

    @property
    def synced(self) -> bool:
        return is_synced(self._clock) and not self.clamped

    def published(self, segment: Segment) -> None:
        self.prev_end = segment.end
