"""The running agent's picamera2 path keeps the main stream out of the process: frames carry only
the lores Y plane when the hardware encoder records; and the fake picamera2's hardware mode (the
memory placement of a Pi, used by benchmarks/agent_resources.py) records the same way."""

from __future__ import annotations

from pathlib import Path

import av

from agent.clock import ManualClock
from agent.db import connect, db_path
from agent.detection.masks import PrivacyMasker
from agent.recording.segments import SegmentIndex, make_recorder
from agent.sources import make_source
from tests.agent.recording_support import decode_all
from tests.agent.test_sources_picamera2 import LEFT_THIRD, pi_config


def record(cfg, clock, frames_wanted: int, masker=None, full_frames: bool = False, inspect=None):
    index = SegmentIndex(connect(db_path(cfg.unit.data_dir)))
    source = make_source(cfg.camera, clock, full_frames=full_frames)
    recorder = make_recorder(cfg, clock, index, masker, source)
    source.open()
    frames = []
    while len(frames) < frames_wanted:
        clock.advance(0.1)
        frame = source.read(5.0)
        frames.append(frame)
        recorder.write(frame)
    if inspect is not None:
        inspect(source)
    recorder.close()
    source.close()
    return index, frames


def check_segments(index, frames, lost_at_close: int = 0) -> None:
    segments = index.all()
    assert segments and len(frames) - lost_at_close <= sum(s.frames for s in segments) <= len(frames)
    for seg in segments:
        n, keys, codec, _ = decode_all(seg.path)
        assert codec == "h264" and keys[0] and n == seg.frames
        with av.open(str(seg.path)) as c:
            img = next(c.decode(video=0)).to_ndarray(format="bgr24")
        assert img[:, :200].max() < 24 and img[:, 230:].mean() > 60  # masked before encoding


def test_without_full_frames_only_the_lores_stream_reaches_the_app(tmp_path, fake_picamera2) -> None:
    cfg = pi_config(tmp_path)
    index, frames = record(cfg, ManualClock(), 50, masker=PrivacyMasker([LEFT_THIRD]))
    assert all(f.image.size == 0 and f.gray.shape == (240, 320) for f in frames)
    assert frames[10].gray.mean() > 30  # the real scene, not a blank plane
    check_segments(index, frames)


def ring_resident_kb(path: Path) -> int:
    """Resident kB of this process's mapping of the fake camera's buffers (from /proc/self/smaps)."""
    rss, inside = 0, False
    for line in Path("/proc/self/smaps").read_text().splitlines():
        parts = line.split()
        if parts and "-" in parts[0] and not parts[0].endswith(":"):
            inside = len(parts) > 5 and parts[5] == str(path)
        elif inside and parts[0] == "Rss:":
            rss += int(parts[1])
    return rss


def test_fake_hardware_mode_records_from_buffers_the_app_does_not_copy(tmp_path, fake_picamera2,
                                                                        monkeypatch) -> None:
    """Sensor and encoder run in child processes; the app maps the camera's buffers and, without
    full frames, touches only the lores part of them (and the masked area, in place)."""
    monkeypatch.setattr(fake_picamera2.Picamera2, "hardware", True)
    cfg = pi_config(tmp_path, segment_seconds=2)
    seen: dict = {}

    def inspect(source) -> None:
        cam = source.camera
        ring = cam._ring
        assert cam._sensor.proc.poll() is None and cam.encoder._vpu.proc.poll() is None  # child processes
        lores = ring.slot_bytes - ring.main_bytes
        seen["ring"] = (ring.count * ring.main_bytes // 1024, ring.count * lores // 1024,
                        ring_resident_kb(ring.path))

    index, frames = record(cfg, ManualClock(), 45, inspect=inspect)
    main_kb, lores_kb, resident_kb = seen["ring"]
    assert resident_kb < lores_kb + main_kb / 5  # lores planes (and the kernel's fault-around) only
    assert all(f.image.size == 0 for f in frames) and frames[10].gray.mean() > 30
    cam = fake_picamera2.Picamera2.instances[-1]
    assert cam.closed and cam._sensor is None and not cam._ring.path.exists()
    segments = index.all()
    # frames still in the encoder when the recorder closes are lost, as with the Pi's encoder
    assert segments and len(frames) - 3 <= sum(s.frames for s in segments) <= len(frames)
    for seg in segments:
        n, keys, codec, _ = decode_all(seg.path)
        assert codec == "h264" and keys[0] and n == seg.frames


def test_fake_hardware_mode_burns_masks_in_before_the_encoder(tmp_path, fake_picamera2, monkeypatch) -> None:
    monkeypatch.setattr(fake_picamera2.Picamera2, "hardware", True)
    cfg = pi_config(tmp_path, segment_seconds=2)
    index, frames = record(cfg, ManualClock(), 25, masker=PrivacyMasker([LEFT_THIRD]))
    check_segments(index, frames, lost_at_close=3)
