"""Clock steps (a Pi without a real-time clock booting with a stale time, then NTP stepping it):
ClockWatch sees them, footage recorded before sync is flagged, and segment times never run
backwards, overlap or have negative length, whether the clock jumps forward or backward."""

from __future__ import annotations

import pytest

from agent.clock import ClockWatch, ManualClock
from agent.db import connect, db_path
from agent.recording.segments import SegmentIndex, SegmentRecorder
from agent.sources import Frame, open_source
from tests.agent.recording_support import VTEST, need, unit_config

DAY = 86400.0


@pytest.fixture(scope="module")
def images():
    src = open_source(unit_config("/tmp", need(VTEST)).camera, ManualClock())
    out = [src.read(1.0).image for _ in range(40)]
    src.close()
    return out


class LiveCamera:
    """Stamps real images like a live camera does: monotonic and wall time at capture."""

    def __init__(self, clock, images, fps: float = 10.0) -> None:
        self.clock, self.images, self.step, self.n = clock, images, 1.0 / fps, 0

    def frames(self, seconds: float):
        for _ in range(round(seconds / self.step)):
            self.clock.sleep(self.step)
            img = self.images[self.n % len(self.images)]
            yield Frame(self.n, self.clock.monotonic(), self.clock.time(), img, img[::2, ::2, 0])
            self.n += 1


def check_consistent(segments) -> None:
    for seg in segments:
        assert seg.end > seg.start and seg.frames > 0
    for a, b in zip(segments, segments[1:], strict=False):
        assert b.start >= a.end - 1e-6, f"overlap: {a.path.name} .. {b.path.name}"
        assert b.start - a.end < 0.2  # and no invented gap in continuous recording


def test_clock_watch_sees_steps_and_asks_the_probe() -> None:
    clock = ManualClock()
    answers = [False]
    watch = ClockWatch(clock, probe=lambda: answers[-1], probe_interval_s=30)
    assert watch.time() == clock.time() and not watch.synced and watch.jumps == 0
    clock.advance(10)
    clock.set_wall(clock.time() + 0.4)  # drift under the tolerance is no step
    assert watch.jumps == 0
    clock.set_wall(clock.time() + 3 * DAY)
    assert watch.jumps == 1 and watch.last_jump_s == pytest.approx(3 * DAY + 0.4)
    assert watch.time() == clock.time()
    answers.append(True)
    assert watch.synced  # asked again straight after a step
    answers.append(False)
    clock.advance(10)
    assert watch.synced  # not asked again within probe_interval_s
    clock.advance(30)
    assert not watch.synced
    clock.set_wall(clock.time() - 3600)
    assert watch.jumps == 2 and watch.last_jump_s == pytest.approx(-3600)


def test_clock_watch_without_probe_refuses_time_before_recorded_footage() -> None:
    clock = ManualClock()
    watch = ClockWatch(clock)
    assert watch.synced
    assert watch.not_before(clock.time() + 500)
    assert watch.time() == pytest.approx(clock.time() + 500) and not watch.synced
    clock.set_wall(clock.time() + DAY)  # NTP arrives
    assert watch.synced and watch.time() == clock.time()


@pytest.mark.parametrize("step", [3 * DAY, -3600.0], ids=["forward", "backward"])
def test_segments_stay_consistent_across_a_clock_step(tmp_path, images, step) -> None:
    cfg = unit_config(tmp_path, recording={"segment_seconds": 4})
    clock = ManualClock()
    synced = [False]
    watch = ClockWatch(clock, probe=lambda: synced[-1], probe_interval_s=1)
    index = SegmentIndex(connect(db_path(tmp_path)))
    recorder = SegmentRecorder(cfg, watch, index)
    cam = LiveCamera(watch, images)
    for frame in cam.frames(10):  # 10 s on the wrong clock: 4 + 4 + 2 (split at the step)
        recorder.write(frame)
    clock.set_wall(clock.time() + step)
    synced.append(True)
    step_wall = clock.time()
    for frame in cam.frames(10):
        recorder.write(frame)
    recorder.close()
    segments = index.all()
    check_consistent(segments)
    assert [s.clock_synced for s in segments] == [False] * 3 + [True] * 3
    assert sum(s.frames for s in segments) == 200
    # footage from before the step was re-timed onto the corrected clock, ending where it resumed
    assert segments[2].end == pytest.approx(step_wall, abs=0.15)
    assert segments[0].start == pytest.approx(step_wall - 10, abs=0.15)
    assert segments[-1].end == pytest.approx(clock.time(), abs=0.15)
    assert index.covering(step_wall - 5, step_wall + 5) == segments[1:5]


def test_recorder_alone_handles_a_backward_step_on_a_plain_clock(tmp_path, images) -> None:
    cfg = unit_config(tmp_path, recording={"segment_seconds": 4})
    clock = ManualClock()
    index = SegmentIndex(connect(db_path(tmp_path)))
    recorder = SegmentRecorder(cfg, clock, index)
    cam = LiveCamera(clock, images)
    for frame in cam.frames(6):
        recorder.write(frame)
    clock.set_wall(clock.time() - 600)
    for frame in cam.frames(6):
        recorder.write(frame)
    recorder.close()
    check_consistent(index.all())
    assert index.all()[-1].end == pytest.approx(clock.time(), abs=0.15)


def test_restart_with_a_stale_clock_never_overlaps_earlier_footage(tmp_path, images) -> None:
    cfg = unit_config(tmp_path, recording={"segment_seconds": 4})
    clock = ManualClock()
    index = SegmentIndex(connect(db_path(tmp_path)))
    first = SegmentRecorder(cfg, ClockWatch(clock), index)
    for frame in LiveCamera(clock, images).frames(8):
        first.write(frame)
    first.close()
    before = index.all()
    # Reboot: monotonic restarts low, the wall clock comes back an hour behind (no RTC).
    real_now = clock.time()
    clock2 = ManualClock(wall=real_now - 3600, mono=50.0)
    watch = ClockWatch(clock2)
    second = SegmentRecorder(cfg, watch, index)
    assert not watch.synced
    cam = LiveCamera(watch, images)
    for frame in cam.frames(8):
        second.write(frame)
    assert all(not s.clock_synced for s in index.all()[len(before):])
    check_consistent(index.all())
    clock2.set_wall(real_now + 60)  # NTP: the reboot took 52 s, then 8 s were recorded
    for frame in cam.frames(4):
        second.write(frame)
    second.close()
    segments = index.all()
    assert segments[: len(before)] == before  # the earlier run is untouched
    check_consistent(segments[len(before):])
    assert segments[len(before)].start == pytest.approx(real_now + 52, abs=0.15)  # re-timed
    assert segments[-1].clock_synced and segments[-1].end == pytest.approx(real_now + 64, abs=0.15)
