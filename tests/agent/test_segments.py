"""Continuous recording from real footage: H.264 yuv420p MP4 segments starting on keyframes,
published atomically, indexed with SHA-256, privacy masks burnt in, index queries by time."""

from __future__ import annotations

import av
import numpy as np
import pytest

from agent.clock import ManualClock
from agent.db import connect, db_path
from agent.detection.masks import PrivacyMasker
from agent.fsutil import sha256_file
from agent.recording.segments import SegmentIndex, SegmentRecorder, segment_path
from agent.sources import open_source
from tests.agent.recording_support import VTEST, decode_all, need, unit_config


def record(cfg, clock, max_frames=None, masker=None):
    index = SegmentIndex(connect(db_path(cfg.unit.data_dir)))
    source = open_source(cfg.camera, clock)
    recorder = SegmentRecorder(cfg, clock, index, masker)
    n = 0
    while (frame := source.read(1.0)) is not None and (max_frames is None or n < max_frames):
        recorder.write(frame)
        n += 1
    recorder.close()
    source.close()
    return index, n


def test_segments_are_h264_keyframe_started_and_indexed(tmp_path) -> None:
    cfg = unit_config(tmp_path, need(VTEST), recording={"segment_seconds": 4, "keyframe_interval_s": 1})
    clock = ManualClock()
    index, n = record(cfg, clock, max_frames=250)  # 25 s of the 10 fps clip
    segments = index.all()
    assert [round(s.duration) for s in segments] == [4, 4, 4, 4, 4, 4, 1]
    assert sum(s.frames for s in segments) == n
    for a, b in zip(segments, segments[1:], strict=False):
        assert abs(a.end - b.start) < 1e-6  # contiguous, no overlap
    for seg in segments:
        frames, keys, codec, pix = decode_all(seg.path)
        assert (codec, pix) == ("h264", "yuv420p")
        assert frames == seg.frames and keys[0]
        assert keys.count(True) >= int(seg.duration)  # a keyframe every second
        assert sha256_file(seg.path) == seg.sha256 and seg.path.stat().st_size == seg.size
        assert seg.path == segment_path(tmp_path / "recordings", "unit-1", seg.start)
        assert seg.clock_synced
    assert not list((tmp_path / "recordings").rglob(".*.tmp"))
    first = segments[0]
    assert first.path.name == "unit-1_20260101T000000.000Z.mp4" and first.path.parent.name == "2026-01-01"


def test_covering_and_latest(tmp_path) -> None:
    cfg = unit_config(tmp_path, need(VTEST), recording={"segment_seconds": 5})
    index, _ = record(cfg, ManualClock(), max_frames=200)
    segs = index.all()
    t0 = segs[0].start
    assert index.covering(t0 + 6, t0 + 11) == segs[1:3]
    assert index.covering(t0 + 5, t0 + 5.5) == [segs[1]]
    assert index.covering(t0 - 100, t0 - 1) == []
    assert index.latest() == segs[-1]


def test_privacy_mask_is_burnt_into_recorded_frames(tmp_path) -> None:
    cfg = unit_config(tmp_path, need(VTEST))
    left_half = [(0.0, 0.0), (0.5, 0.0), (0.5, 1.0), (0.0, 1.0)]
    index, _ = record(cfg, ManualClock(), max_frames=30, masker=PrivacyMasker([left_half]))
    with av.open(str(index.all()[0].path)) as c:
        for frame in c.decode(video=0):
            img = frame.to_ndarray(format="bgr24").astype(np.int16)
            assert img[:, :230].max() < 24  # blank (allowing for compression ringing at the edge)
            assert img[:, 250:].mean() > 60  # the scene is still there


def test_restart_reconciles_index_with_files(tmp_path) -> None:
    """A crash between rename and index insert, a segment deleted behind the index's back, and a
    half-written temp file: the next start repairs all three."""
    cfg = unit_config(tmp_path, need(VTEST), recording={"segment_seconds": 3})
    index, _ = record(cfg, ManualClock(), max_frames=90)
    a, b, c = index.all()
    index.remove(b.id)  # published, but the row never made it
    c.path.unlink()  # gone from disk
    tmp = c.path.with_name(f".{c.path.name}.tmp")
    tmp.write_bytes(b"\0" * 1000)  # a segment that was being written at the crash
    SegmentRecorder(cfg, ManualClock(), index)
    rows = index.all()
    assert [r.path for r in rows] == [a.path, b.path] and not tmp.exists()
    again = rows[1]
    assert (again.sha256, again.frames, again.size) == (b.sha256, b.frames, b.size)
    assert again.start == pytest.approx(b.start, abs=0.001) and again.end == pytest.approx(b.end, abs=0.01)
    assert not again.clock_synced  # its time comes from its name: not known good
