"""Events: a pure state machine (idle -> active -> post-roll -> idle) over the detector's results.

Fed by the pipeline's analysis thread and by `cctv-agent detect` alike, so both see the same events;
closed events go to agent.events.clips, which cuts the clip from the segments and publishes the record.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Protocol

from agent.config import EventsConfig
from agent.recording.segment_time import JUMP_TOLERANCE_S

Box = list[float]  # normalised [x, y, w, h]
# Frame times are large floats (monotonic seconds since boot): boundaries compare with a margin so
# the same footage gives the same events whatever the clock read when it started (run vs detect).
TIME_EPS = 1e-6
CLOCK_STEP_S = JUMP_TOLERANCE_S  # wall vs frame time moving more than this = a clock step


class MotionLike(Protocol):
    """What the tracker reads from agent.detection.motion.MotionResult."""

    t: float
    score: float
    boxes: Sequence[Sequence[float]]
    motion: bool
    calibrating: bool


class Phase(enum.Enum):
    IDLE = "idle"
    ACTIVE = "active"
    POST_ROLL = "post_roll"


class CloseReason(enum.Enum):
    QUIET = "quiet"  # post-roll ran out with no motion
    SPLIT = "split"  # max_clip_s reached while motion went on; a linked event follows
    CAPPED = "capped"  # max_clip_s reached during the post-roll
    FINISHED = "finished"  # the stream ended or the agent is shutting down
    INTERRUPTED = "interrupted"  # the agent died (kill -9, power cut) while it was open; see eventlog


def event_id(unit_id: str, wall: float) -> str:
    """`<unit>-<YYYYMMDDTHHMMSS.mmmZ>`: unique per unit, sorts by time."""
    dt = datetime.fromtimestamp(wall, UTC)
    return f"{unit_id}-{dt.strftime('%Y%m%dT%H%M%S')}.{dt.microsecond // 1000:03d}Z"


@dataclass(frozen=True)
class Event:
    """One event; `t` values are frame (monotonic) times, `wall` values UTC epoch seconds."""

    event_id: str
    start_t: float
    start_wall: float
    end_t: float  # last frame with motion (or the split moment)
    end_wall: float
    clip_start_t: float  # what the clip should cover, before keyframe alignment
    clip_end_t: float
    peak_score: float
    peak_t: float
    peak_wall: float
    peak_index: int  # frame index of the peak: the pipeline keeps that frame for the snapshot
    peak_boxes: list[Box] = field(default_factory=list)
    previous_event_id: str | None = None
    reason: CloseReason | None = None  # set when closed

    def wall_at(self, t: float) -> float:
        """Map a frame time of this event to UTC, anchored at the start frame."""
        return self.start_wall + (t - self.start_t)

    @property
    def clip_start_wall(self) -> float:
        return self.wall_at(self.clip_start_t)

    @property
    def clip_end_wall(self) -> float:
        return self.end_wall + (self.clip_end_t - self.end_t)


@dataclass(frozen=True)
class Update:
    """What one analysed frame changed: the pipeline reacts to each part."""

    started: Event | None = None  # a new event opened with this frame
    new_peak: bool = False  # this frame is the open event's new peak: keep its image
    closed: tuple[Event, ...] = ()  # events finished (at most two: a split and a quiet close)


class EventTracker:
    """Turns motion results into events; no I/O, no clock: time comes from the results.

    Called from one thread only (the analysis thread, or detect's loop).
    """

    def __init__(self, cfg: EventsConfig, unit_id: str) -> None:
        self._cfg = cfg
        self._unit = unit_id
        self._phase = Phase.IDLE
        self._event: Event | None = None
        self._last_t: float | None = None
        self._last_id: str | None = None

    @property
    def phase(self) -> Phase:
        return self._phase

    @property
    def open_event(self) -> Event | None:
        return self._event

    def reconfigure(self, cfg: EventsConfig) -> None:
        """New pre/post-roll and max-clip settings (config reload); an open event carries on."""
        self._cfg = cfg

    def update(self, result: MotionLike, wall: float, index: int) -> Update:
        """Feed one analysed frame (its result, UTC wall time and frame index)."""
        t = result.t
        self._last_t = t
        moving = result.motion and not result.calibrating
        closed: list[Event] = []
        ev = self._event
        if ev is not None and abs(wall - ev.wall_at(t)) > CLOCK_STEP_S:
            ev = self._event = _shifted(ev, wall - ev.wall_at(t))
        if ev is not None and self._phase is Phase.POST_ROLL:
            quiet_end = ev.end_t + self._cfg.post_roll_s
            cap = ev.clip_start_t + self._cfg.max_clip_s
            if t >= quiet_end - TIME_EPS or (not moving and t >= cap - TIME_EPS):
                reason = CloseReason.QUIET if quiet_end <= cap else CloseReason.CAPPED
                closed.append(self._close(min(quiet_end, cap), reason))
                ev = None
        if not moving:
            if ev is not None and self._phase is Phase.ACTIVE:
                self._phase = Phase.POST_ROLL
            return Update(closed=tuple(closed))
        if ev is None:
            return self._start(result, wall, index, previous=None, pre_roll=True, closed=closed)
        if t - ev.clip_start_t >= self._cfg.max_clip_s - TIME_EPS:
            ev = replace(ev, end_t=t, end_wall=wall)
            self._event = ev
            closed.append(self._close(t, CloseReason.SPLIT))
            return self._start(result, wall, index, previous=ev.event_id, pre_roll=False, closed=closed)
        self._phase = Phase.ACTIVE
        ev = replace(ev, end_t=t, end_wall=wall)
        peak = result.score > ev.peak_score
        if peak:
            ev = replace(ev, peak_score=result.score, peak_t=t, peak_wall=wall, peak_index=index,
                         peak_boxes=_boxes(result.boxes))
        self._event = ev
        return Update(new_peak=peak, closed=tuple(closed))

    def finish(self, last_t: float | None = None) -> Event | None:
        """Close the open event at the end of the stream or at shutdown; its clip stops at the last
        frame (`last_t`: the last frame seen, analysed or not)."""
        if self._event is None or self._last_t is None:
            return None
        ev = self._event
        last = max(self._last_t, last_t if last_t is not None else self._last_t)
        end = min(ev.end_t + self._cfg.post_roll_s, ev.clip_start_t + self._cfg.max_clip_s, last)
        return self._close(max(end, ev.end_t), CloseReason.FINISHED)

    def _start(self, result: MotionLike, wall: float, index: int, previous: str | None,
               pre_roll: bool, closed: list[Event]) -> Update:
        t = result.t
        eid = event_id(self._unit, wall)
        if eid == self._last_id:  # two events in one millisecond of wall time: keep ids unique
            eid = event_id(self._unit, wall + 0.001)
        self._last_id = eid
        ev = Event(event_id=eid, start_t=t, start_wall=wall, end_t=t, end_wall=wall,
                   clip_start_t=t - self._cfg.pre_roll_s if pre_roll else t, clip_end_t=t,
                   peak_score=result.score, peak_t=t, peak_wall=wall, peak_index=index,
                   peak_boxes=_boxes(result.boxes), previous_event_id=previous)
        self._event = ev
        self._phase = Phase.ACTIVE
        return Update(started=ev, new_peak=True, closed=tuple(closed))

    def _close(self, clip_end_t: float, reason: CloseReason) -> Event:
        assert self._event is not None
        ev = replace(self._event, clip_end_t=clip_end_t, reason=reason)
        self._event = None
        self._phase = Phase.IDLE
        return ev


def on_timeline(ev: Event, wall_of: Callable[[float], float]) -> Event:
    """The event with its UTC times taken from the recording's timeline (`wall_of(t)`), which holds
    a stale clock back after a reboot; frame wall times would point at older footage."""
    return replace(ev, start_wall=wall_of(ev.start_t), end_wall=wall_of(ev.end_t),
                   peak_wall=wall_of(ev.peak_t))


def _shifted(ev: Event, delta: float) -> Event:
    """The wall clock was stepped (NTP sync) during the event: the recorder re-times this run's
    segments by the same step, so the event follows it to keep finding its footage."""
    return replace(ev, start_wall=ev.start_wall + delta, end_wall=ev.end_wall + delta,
                   peak_wall=ev.peak_wall + delta)


def _boxes(boxes: Sequence[Sequence[float]]) -> list[Box]:
    return [[round(float(v), 4) for v in b] for b in boxes]
