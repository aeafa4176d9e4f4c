"""EventTracker as a table: pre/post roll, merging, max-clip split and linking, calibration, finish."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pytest

from agent.config import EventsConfig, MotionConfig
from agent.detection.motion import MotionDetector
from agent.events.tracker import CloseReason, Event, EventTracker, Phase, event_id

CFG = EventsConfig(pre_roll_s=5, post_roll_s=10, max_clip_s=60)
WALL0 = 1_767_225_600.0
STEP = 0.2  # 5 fps analysis


@dataclass(frozen=True)
class R:
    t: float
    score: float = 0.0
    boxes: list = field(default_factory=list)
    motion: bool = False
    calibrating: bool = False


def feed(spans: list[tuple[float, float]], until: float, cfg: EventsConfig = CFG,
         score=lambda t: 0.1, calibrating=lambda t: False) -> tuple[list[Event], EventTracker]:
    """Motion during each [a, b] span (inclusive), analysed every STEP seconds up to `until`."""
    tracker = EventTracker(cfg, "unit-1")
    closed: list[Event] = []
    for i in range(int(round(until / STEP)) + 1):
        t = round(i * STEP, 6)
        moving = any(a - 1e-9 <= t <= b + 1e-9 for a, b in spans)
        r = R(t, score(t) if moving else 0.0, [[0.1, 0.2, 0.3, 0.4]] if moving else [], moving,
              calibrating(t))
        closed.extend(tracker.update(r, WALL0 + t, i).closed)
    return closed, tracker


# spans of motion, end of input -> expected (start, end, clip_start, clip_end, reason) per event
CASES = {
    "single burst": (
        [(10, 12)], 40, [(10, 12, 5, 22, CloseReason.QUIET)]),
    "gap shorter than post-roll merges": (
        [(10, 12), (20, 21)], 50, [(10, 21, 5, 31, CloseReason.QUIET)]),
    "gap longer than post-roll splits": (
        [(10, 12), (23, 24)], 50, [(10, 12, 5, 22, CloseReason.QUIET), (23, 24, 18, 34, CloseReason.QUIET)]),
    "motion at the first frame: pre-roll before the start": (
        [(0, 1)], 20, [(0, 1, -5, 11, CloseReason.QUIET)]),
    "post-roll capped by max clip": (
        [(10, 64)], 90, [(10, 64, 5, 65, CloseReason.CAPPED)]),
    "long activity splits at max clip": (
        [(10, 140)], 170, [(10, 65, 5, 65, CloseReason.SPLIT), (65, 125, 65, 125, CloseReason.SPLIT),
                           (125, 140, 125, 150, CloseReason.QUIET)]),
}


@pytest.mark.parametrize("name", list(CASES))
def test_event_table(name: str) -> None:
    spans, until, expected = CASES[name]
    closed, tracker = feed(spans, until)
    got = [(e.start_t, e.end_t, e.clip_start_t, e.clip_end_t, e.reason) for e in closed]
    _close(got, expected)
    assert tracker.phase is Phase.IDLE and tracker.open_event is None


def _close(got: list, expected: list) -> None:
    assert len(got) == len(expected), got
    for g, x in zip(got, expected, strict=True):
        assert g[:4] == pytest.approx(x[:4], abs=1e-6), (g, x)
        assert g[4] is x[4]


def test_split_events_are_linked_and_contiguous() -> None:
    closed, _ = feed([(10, 140)], 170)
    assert [e.previous_event_id for e in closed] == [None, closed[0].event_id, closed[1].event_id]
    assert len({e.event_id for e in closed}) == 3
    for a, b in zip(closed, closed[1:], strict=False):
        assert a.clip_end_t == pytest.approx(b.clip_start_t)  # no gap, no overlap between linked clips
    assert all(e.clip_end_t - e.clip_start_t <= CFG.max_clip_s + 1e-6 for e in closed)


def test_close_happens_on_the_first_frame_past_post_roll() -> None:
    tracker = EventTracker(CFG, "u1")
    tracker.update(R(10.0, 0.2, [], True), WALL0 + 10, 0)
    assert tracker.phase is Phase.ACTIVE
    assert not tracker.update(R(11.0), WALL0 + 11, 1).closed
    assert tracker.phase is Phase.POST_ROLL
    assert not tracker.update(R(19.8), WALL0 + 19.8, 2).closed
    out = tracker.update(R(20.0), WALL0 + 20, 3)
    assert [e.event_id for e in out.closed] == ["u1-20260101T000010.000Z"]


def test_peak_frame_score_and_boxes_are_tracked() -> None:
    tracker = EventTracker(CFG, "u1")
    flags = []
    for i, s in enumerate([0.1, 0.5, 0.3, 0.7, 0.2]):
        u = tracker.update(R(10 + i * STEP, s, [[s, 0, 0.1, 0.1]], True), WALL0 + 10 + i * STEP, 100 + i)
        flags.append(u.new_peak)
    assert flags == [True, True, False, True, False]
    ev = tracker.open_event
    assert ev is not None and ev.peak_score == 0.7 and ev.peak_index == 103
    assert ev.peak_boxes == [[0.7, 0, 0.1, 0.1]]
    assert ev.peak_wall == pytest.approx(WALL0 + 10.6)


def test_calibrating_frames_never_start_an_event() -> None:
    closed, tracker = feed([(10, 12)], 40, calibrating=lambda t: t < 30)
    assert closed == [] and tracker.open_event is None


def test_finish_closes_open_event_at_last_frame() -> None:
    _, tracker = feed([(10, 20)], 24)
    ev = tracker.finish()
    assert ev is not None and ev.reason is CloseReason.FINISHED
    assert (ev.start_t, ev.end_t, ev.clip_end_t) == pytest.approx((10, 20, 24))
    assert tracker.finish() is None


def test_event_id_format() -> None:
    assert event_id("herts-001", WALL0 + 3723.0456) == "herts-001-20260101T010203.045Z"


def _square_frames(on: set[int], n: int) -> list[np.ndarray]:
    rng = np.random.default_rng(1)
    base = rng.integers(60, 200, (120, 160), dtype=np.uint8)
    frames = []
    for i in range(n):
        f = base.copy()
        if i in on:  # a dark block walking left to right
            x = 10 + 6 * (i - min(on))
            f[40:80, x:x + 20] = 20
        frames.append(f)
    return frames


@pytest.mark.parametrize("on,events", [(set(), 0), ({30}, 0), (set(range(30, 36)), 1)])
def test_detector_hysteresis_feeds_tracker(on: set[int], events: int) -> None:
    """A one-frame flash (below hysteresis_frames=2) makes no event; sustained change makes one."""
    det = MotionDetector(MotionConfig(hysteresis_frames=2), (160, 120))
    tracker = EventTracker(CFG, "u1")
    closed: list[Event] = []
    for i, gray in enumerate(_square_frames(on, 150)):
        t = i * STEP
        if det.should_analyse(t):
            closed.extend(tracker.update(det.analyse(gray, t), WALL0 + t, i).closed)
    assert len(closed) == events
    if events:
        assert closed[0].start_t == pytest.approx(31 * STEP)  # second consecutive frame of motion


def test_clock_step_during_an_event_moves_its_wall_times() -> None:
    """NTP steps the clock mid-event: the recorder re-times the run's segments, the event follows."""
    tracker = EventTracker(CFG, "u1")
    tracker.update(R(10.0, 0.2, [], True), WALL0 + 10, 0)
    tracker.update(R(10.2, 0.3, [], True), WALL0 + 10.2, 1)
    tracker.update(R(10.4, 0.1, [], True), WALL0 + 10.4 + 3600, 2)  # clock stepped forward 1 h
    ev = tracker.open_event
    assert ev is not None and ev.start_wall == pytest.approx(WALL0 + 3610)
    assert ev.peak_wall == pytest.approx(WALL0 + 3610.2) and ev.end_wall == pytest.approx(WALL0 + 3610.4)
    assert ev.clip_start_wall == pytest.approx(WALL0 + 3605)
    assert ev.event_id == "u1-20260101T000010.000Z"  # the id does not change


@pytest.mark.parametrize("t0", [0.0, 100.0, 500.0, 12345.678, 1484.972245844])
def test_events_do_not_depend_on_where_the_clock_started(t0: float) -> None:
    """run and detect see the same footage at different monotonic offsets: same events (at t0=100
    an exact float comparison split one analysed frame late)."""
    tracker = EventTracker(CFG, "u1")
    got = []
    for i in range(500):
        offset = (2 * i) / 10  # every other frame of a 10 fps file, as the file source times them
        moving = 2.15 <= offset <= 79.45
        got += [(round(e.start_t - t0, 6), round(e.end_t - t0, 6))
                for e in tracker.update(R(t0 + offset, 0.1, [], moving), WALL0 + offset, i).closed]
    assert got == [(2.2, 57.2), (57.2, 79.4)]  # the second closed after its post-roll


@pytest.mark.parametrize("masked,events", [(False, 1), (True, 0)])
def test_motion_behind_a_privacy_mask_makes_no_event(masked: bool, events: int) -> None:
    """The analysis stage (run and detect) never detects inside a privacy mask."""
    from agent.config import parse_config
    from agent.detection.analyser import Analyser
    from agent.sources.base import Frame

    privacy = {"masks": [{"polygon": [[0, 0], [0.5, 0], [0.5, 1], [0, 1]]}]} if masked else {}
    analyser = Analyser(parse_config({"unit": {"id": "u1"}, "privacy": privacy}, env={}), "u1")
    rng = np.random.default_rng(3)
    base = rng.integers(60, 200, (120, 160), dtype=np.uint8)
    closed = []
    for i in range(150):
        gray = base.copy()
        if 30 <= i < 45:  # a dark block walking about in the left half only
            x = 5 + 3 * (i - 30)
            gray[40:80, x:x + 20] = 20
        frame = Frame(i, i * STEP, WALL0 + i * STEP, np.zeros((1, 1, 3), np.uint8), gray)
        closed += analyser.feed(frame)
    closed += analyser.finish()
    assert len(closed) == events
