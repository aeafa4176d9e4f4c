"""The picamera2 path against a fake picamera2 module (tests/fakes) that films a real clip: the
source yields BGR frames and the lores Y plane, the hardware encoder's stream is split into MP4
segments at keyframes with privacy masks burnt in by the pre_callback, reopen after a stall."""

from __future__ import annotations

import sys

import av
import pytest

from agent.clock import ManualClock
from agent.db import connect, db_path
from agent.detection.masks import PrivacyMasker
from agent.errors import InputError
from agent.fsutil import sha256_file
from agent.recording.segments import SegmentIndex, make_recorder
from agent.sources import FrameTimeout, check_device, make_source
from agent.sources.supervisor import SupervisedSource
from tests.agent.recording_support import decode_all, unit_config

LEFT_THIRD = [(0.0, 0.0), (0.33, 0.0), (0.33, 1.0), (0.0, 1.0)]




def pi_config(tmp_path, **recording):
    return unit_config(tmp_path, camera={"source": "picamera2", "device": "", "width": 640, "height": 360,
                                         "fps": 10, "stall_timeout_s": 5},
                       recording={"segment_seconds": 4, "keyframe_interval_s": 1, **recording})


def run(cfg, clock, picamera2, seconds, masker=None, stall_at=None, attach_late=False):
    index = SegmentIndex(connect(db_path(cfg.unit.data_dir)))
    source = SupervisedSource(make_source(cfg.camera, clock), cfg.camera, clock)
    if attach_late:  # the pipeline opens the camera in its capture thread, the recorder comes later
        source.open()
    recorder = make_recorder(cfg, clock, index, masker, source)
    if not attach_late:
        source.open()
    frames = []
    end = clock.monotonic() + seconds
    while clock.monotonic() < end:
        if stall_at is not None and len(frames) == stall_at:
            picamera2.Picamera2.stall_after = picamera2.Picamera2.instances[-1]._n
        if stall_at is not None and source.restarts:
            picamera2.Picamera2.stall_after = None
        clock.advance(0.1)
        try:
            frame = source.read(0.1)
        except FrameTimeout:
            continue
        frames.append(frame)
        recorder.write(frame)
    recorder.close()
    source.close()
    return index, frames, source


def test_picamera2_source_frames_and_configuration(tmp_path, fake_picamera2) -> None:
    cfg = pi_config(tmp_path)
    clock = ManualClock()
    src = make_source(cfg.camera, clock)
    src.open()
    frame = src.read(1.0)
    cam = fake_picamera2.Picamera2.instances[-1]
    assert cam.camera_config["main"] == {"format": "RGB888", "size": (640, 360)}
    assert cam.camera_config["lores"] == {"format": "YUV420", "size": (320, 240)}
    assert cam.camera_config["controls"] == {"FrameRate": 10.0}
    assert frame.image.shape == (360, 640, 3) and frame.gray.shape == (240, 320)
    assert frame.t == clock.monotonic() and frame.wall == clock.time()
    src.close()
    assert cam.closed


@pytest.mark.parametrize("attach_late", [False, True], ids=["attach-then-open", "open-then-attach"])
def test_hardware_recording_segments_at_keyframes_with_masks(tmp_path, fake_picamera2, attach_late) -> None:
    cfg = pi_config(tmp_path)
    clock = ManualClock()
    index, frames, _ = run(cfg, clock, fake_picamera2, 13, masker=PrivacyMasker([LEFT_THIRD]),
                           attach_late=attach_late)
    assert len(fake_picamera2.Picamera2.instances) == 1
    segments = index.all()
    assert [round(s.duration) for s in segments] == [4, 4, 4, 1]
    assert sum(s.frames for s in segments) == len(frames) == 130
    assert abs(segments[0].start - frames[0].wall) < 0.05
    for a, b in zip(segments, segments[1:], strict=False):
        assert abs(b.start - a.end) < 1e-6
    for seg in segments:
        n, keys, codec, pix = decode_all(seg.path)
        assert (codec, pix) == ("h264", "yuv420p") and keys[0] and n == seg.frames
        assert sha256_file(seg.path) == seg.sha256
        with av.open(str(seg.path)) as c:
            img = next(c.decode(video=0)).to_ndarray(format="bgr24")
        assert img[:, :200].max() < 24 and img[:, 230:].mean() > 60  # masked before encoding
    assert frames[5].image[:, :200].max() == 0  # the app's frames are masked too (snapshots)
    assert not list((tmp_path / "recordings").rglob(".*.tmp"))


def test_stalled_camera_is_reopened_and_recording_carries_on(tmp_path, fake_picamera2) -> None:
    cfg = pi_config(tmp_path)
    clock = ManualClock()
    index, frames, source = run(cfg, clock, fake_picamera2, 20, stall_at=30)
    assert source.restarts == 1 and len(fake_picamera2.Picamera2.instances) == 2
    assert fake_picamera2.Picamera2.instances[0].closed
    segments = index.all()
    assert sum(s.frames for s in segments) == len(frames)
    gap = [b.start - a.end for a, b in zip(segments, segments[1:], strict=False)]
    assert max(gap) == pytest.approx(5 + 1, abs=0.35)  # the stall timeout plus the first backoff
    for seg in segments:
        assert decode_all(seg.path)[1][0]


def test_no_camera_is_input_error(tmp_path, fake_picamera2, monkeypatch) -> None:
    monkeypatch.setattr(fake_picamera2.Picamera2, "cameras", [])
    cfg = pi_config(tmp_path)
    source = SupervisedSource(make_source(cfg.camera, ManualClock()), cfg.camera, ManualClock())
    with pytest.raises(InputError, match="camera 0 not found: picamera2 sees 0 camera"):
        source.open()
    with pytest.raises(InputError, match="camera 0 not found"):
        check_device(cfg.camera)
    assert fake_picamera2.Picamera2.instances == []  # nothing was opened


def test_without_picamera2_installed_the_error_says_what_to_do(tmp_path, monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "picamera2", None)  # import fails as on a PC
    cfg = pi_config(tmp_path)
    with pytest.raises(InputError, match="python3-picamera2"):
        make_source(cfg.camera, ManualClock()).open()


def test_segment_hashing_is_off_the_encoder_output_lock(tmp_path, fake_picamera2, monkeypatch) -> None:
    """Hashing a finished segment reads the whole file (MBs on an SD card): not while picamera2's
    encoder thread is inside outputframe holding the output lock, where it stalls the encoder."""
    import agent.recording.segments_hw as hw

    cfg = pi_config(tmp_path)
    outputs: list = []
    held: list[bool] = []
    real_class = hw.segment_output_class

    def recording_class(base):
        cls = real_class(base)

        class Spy(cls):  # type: ignore[misc, valid-type]
            def __init__(self, *a, **kw) -> None:
                super().__init__(*a, **kw)
                outputs.append(self)
        return Spy

    def spy_sha256(path, *a):
        held.append(any(o._lock.locked() for o in outputs))
        return sha256_file(path, *a)

    monkeypatch.setattr(hw, "segment_output_class", recording_class)
    monkeypatch.setattr(hw, "sha256_file", spy_sha256)
    index, _, _ = run(cfg, ManualClock(), fake_picamera2, 9)
    segments = index.all()
    assert len(segments) == 3 and held and not any(held)
    assert all(sha256_file(s.path) == s.sha256 for s in segments)
