"""Camera sources: the file source on real clips (timestamps, loop, pacing), missing devices give
one clear InputError, and the supervisor reopens stalled or failing sources with capped backoff."""

from __future__ import annotations

import numpy as np
import pytest

from agent.clock import ManualClock
from agent.config import CameraConfig
from agent.db import connect
from agent.errors import InputError, SourceError
from agent.sources import Frame, FrameTimeout, check_device, open_source
from agent.sources.supervisor import SupervisedSource
from agent.state import StateStore
from tests.agent.recording_support import HIGHWAY, VTEST, need


def file_cfg(path, **kw) -> CameraConfig:
    return CameraConfig(source="file", device=str(path), **{"pace": "fast", **kw})


def test_file_source_frames_carry_video_time_and_small_gray() -> None:
    clock = ManualClock()
    src = open_source(file_cfg(need(HIGHWAY), analysis_width=160, analysis_height=120), clock)
    assert src.fps == 25.0 and src.size == (320, 240)
    frames = [src.read(1.0) for _ in range(50)]
    assert [f.index for f in frames] == list(range(50))
    steps = np.diff([f.t for f in frames])
    assert np.allclose(steps, 0.04, atol=1e-3)  # video time, though read flat out
    assert np.allclose(np.diff([f.wall for f in frames]), steps, atol=1e-3)
    assert frames[0].wall == clock.time() and frames[0].t == clock.monotonic()
    f = frames[-1]
    assert f.image.shape == (240, 320, 3) and f.image.dtype == np.uint8
    assert f.gray.shape == (120, 160) and f.gray.dtype == np.uint8 and f.gray.std() > 10
    src.close()


def test_file_source_loops_with_increasing_times() -> None:
    clock = ManualClock()
    src = open_source(file_cfg(need(HIGHWAY), loop=True), clock)
    times = [src.read(1.0).t for _ in range(1700 + 30)]
    assert all(b > a for a, b in zip(times, times[1:], strict=False))
    assert times[1700] - times[1699] == pytest.approx(0.04, abs=1e-3)  # seamless across the loop


def test_file_source_realtime_pacing_sleeps_on_the_injected_clock() -> None:
    clock = ManualClock()
    start = clock.monotonic()
    src = open_source(file_cfg(need(VTEST), pace="realtime"), clock)
    for _ in range(21):
        frame = src.read(1.0)
    assert clock.monotonic() - start == pytest.approx(2.0, abs=0.01)  # 20 frame gaps at 10 fps
    assert frame.t == pytest.approx(clock.monotonic(), abs=0.01)


@pytest.mark.parametrize(
    "cfg, message",
    [
        (CameraConfig(source="opencv", device="/dev/video97"), "/dev/video97 does not exist"),
        (CameraConfig(source="opencv", device="97"), r"/dev/video97 \(index 97\) does not exist"),
        (CameraConfig(source="opencv", device=""), "no camera device configured"),
        (CameraConfig(source="file", device="/nonexistent/clip.mp4"), "video file not found"),
    ],
)
def test_missing_device_is_one_clear_input_error(cfg, message) -> None:
    with pytest.raises(InputError, match=message) as err:
        open_source(cfg, ManualClock())
    assert "\n" not in str(err.value)
    with pytest.raises(InputError, match=message):
        check_device(cfg)  # the same check, before anything starts and without opening anything


def test_check_device_accepts_what_exists(tmp_path) -> None:
    check_device(file_cfg(need(VTEST)))
    fake_dev = tmp_path / "video0"
    fake_dev.touch()
    check_device(CameraConfig(source="opencv", device=str(fake_dev)))
    check_device(CameraConfig(source="opencv", device="rtsp://192.0.2.1/stream"))  # checked on open


def test_non_video_file_is_input_error(tmp_path) -> None:
    bad = tmp_path / "notes.mp4"
    bad.write_text("not a video at all\n")
    with pytest.raises(InputError, match="not a readable video"):
        open_source(file_cfg(bad), ManualClock())


class FlakyCamera:
    """A camera at the hardware edge: delivers frames, then stalls or fails on command."""

    fps, size = 10.0, (64, 48)

    def __init__(self, clock: ManualClock) -> None:
        self.clock = clock
        self.mode = "ok"  # ok | stall | error
        self.opens = 0
        self.open_failures = 0
        self.open_times: list[float] = []
        self.n = 0

    def open(self) -> None:
        self.open_times.append(self.clock.monotonic())
        if self.open_failures:
            self.open_failures -= 1
            raise SourceError("camera busy")
        self.opens += 1

    def read(self, timeout: float) -> Frame | None:
        if self.mode == "error":
            self.mode = "ok"
            raise SourceError("device lost")
        if self.mode == "stall":
            self.clock.sleep(timeout)
            raise FrameTimeout("nothing")
        self.clock.sleep(0.1)
        self.n += 1
        img = np.zeros((48, 64, 3), np.uint8)
        return Frame(self.n, self.clock.monotonic(), self.clock.time(), img, img[:, :, 0])

    def close(self) -> None:
        pass


def pump(src: SupervisedSource, seconds: float, clock: ManualClock) -> list[Frame]:
    frames, end = [], clock.monotonic() + seconds
    while clock.monotonic() < end:
        try:
            frames.append(src.read(min(1.0, end - clock.monotonic())))
        except FrameTimeout:
            pass
    return frames


def test_stall_is_detected_and_reopened_with_capped_backoff(tmp_path) -> None:
    clock = ManualClock()
    cam = FlakyCamera(clock)
    cfg = CameraConfig(source="opencv", device="/dev/video0", stall_timeout_s=20, reopen_backoff_max_s=8)
    store = StateStore(connect(tmp_path / "agent.db"), clock)
    src = SupervisedSource(cam, cfg, clock, store)
    src.open()
    frames = pump(src, 5, clock)
    assert len(frames) >= 45 and [f.index for f in frames] == list(range(len(frames)))
    assert store.read("camera").state["state"] == "ok"
    assert store.read("camera").state["fps"] == pytest.approx(10, abs=1)

    cam.mode = "stall"
    stalled_at = clock.monotonic()
    pump(src, 19, clock)
    assert cam.opens == 1 and store.read("camera").state["state"] == "ok"  # the stall timeout is 20 s
    pump(src, 1.5, clock)
    assert cam.opens == 1 and store.read("camera").state["state"] == "stalled"
    assert store.read("camera").state["last_frame_at"] == pytest.approx(frames[-1].wall)
    pump(src, 1.5, clock)
    assert cam.opens == 2  # reopened after the first 1 s backoff
    assert cam.open_times[1] - stalled_at == pytest.approx(21, abs=1.1)
    # It keeps stalling: reopen intervals grow 1, 2, 4, 8 then stay capped at 8 s (plus the stall time).
    pump(src, 200, clock)
    gaps = np.diff(cam.open_times[1:])
    backoffs = gaps - 20
    assert list(np.round(backoffs[:5])) == [2, 4, 8, 8, 8]
    assert src.restarts == len(cam.open_times) - 1

    cam.mode = "ok"
    later = pump(src, 40, clock)
    assert later and later[0].index == frames[-1].index + 1  # numbering runs on across reopens
    state = store.read("camera").state
    assert state["state"] == "ok" and state["restarts"] == src.restarts and state["error"] is None


def test_failing_source_and_failed_reopens_back_off(tmp_path) -> None:
    clock = ManualClock()
    cam = FlakyCamera(clock)
    cfg = CameraConfig(source="opencv", device="/dev/video0", reopen_backoff_max_s=5)
    store = StateStore(connect(tmp_path / "agent.db"), clock)
    src = SupervisedSource(cam, cfg, clock, store)
    src.open()
    pump(src, 1, clock)
    cam.mode, cam.open_failures = "error", 3
    t0 = clock.monotonic()
    with pytest.raises(FrameTimeout):
        src.read(0.5)
    state = store.read("camera").state
    assert state["state"] == "reopening" and "device lost" in state["error"]
    pump(src, 2, clock)
    state = store.read("camera").state
    assert state["state"] == "failed" and "camera busy" in state["error"]
    frames = pump(src, 30, clock)
    assert frames and cam.opens == 2
    # first reopen 1 s after the failure, then failed opens back off 2, 4, then capped at 5 s
    assert cam.open_times[1] - t0 == pytest.approx(1.0, abs=0.01)
    assert list(np.round(np.diff(cam.open_times[1:]))) == [2, 4, 5]
    assert store.read("camera").state["state"] == "ok" and src.restarts == 1
