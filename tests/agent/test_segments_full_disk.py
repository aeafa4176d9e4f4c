"""A really full disk (a small tmpfs, as root): a failed write drops only the segment in progress,
no final-named file is corrupt, recording resumes once space is freed; with retention running after
each segment the disk never fills at all."""

from __future__ import annotations

import shutil

import pytest

from agent.clock import ManualClock
from agent.db import connect, db_path
from agent.recording.retention import Retention
from agent.recording.segments import SegmentIndex, SegmentRecorder
from agent.sources import open_source
from agent.state import StateStore
from tests.agent.recording_support import VTEST, decode_all, need, unit_config
from tests.smalldisk import small_disk as mounted


@pytest.fixture
def small_disk(tmp_path):
    with mounted(tmp_path, 4) as mnt:
        yield mnt


def frames_of(cfg, clock):
    source = open_source(cfg.camera, clock)
    while (frame := source.read(1.0)) is not None:
        if frame.t > clock.monotonic():
            clock.advance(frame.t - clock.monotonic())
        yield frame


def test_disk_full_drops_only_the_open_segment_and_recording_resumes(tmp_path, small_disk) -> None:
    cfg = unit_config(small_disk, need(VTEST), recording={"segment_seconds": 3})
    clock = ManualClock()
    conn = connect(tmp_path / "agent.db")  # the database on another disk, to watch the state row
    index, state = SegmentIndex(conn), StateStore(conn, clock)
    recorder = SegmentRecorder(cfg, clock, index, state=state)
    failures = 0
    for n, frame in enumerate(frames_of(cfg, clock)):
        recorder.write(frame)
        row = state.read("recording")
        if row and row.state["state"] == "error":
            assert "No space left" in row.state["error"]
            failures += 1
            for seg in index.oldest(2):  # what retention would do, a little late
                seg.path.unlink()
                index.remove(seg.id)
            state.report("recording", state="watching")
        if n == 400:
            break
    for seg in index.oldest(2):
        seg.path.unlink()
        index.remove(seg.id)
    recorder.close()
    assert failures >= 2, "the small disk never filled"
    assert state.read("recording").state["state"] == "stopped"
    segments = index.all()
    assert segments and segments[-1].end > segments[0].start + 9  # it carried on after the failure
    for seg in segments:
        frames, keys, codec, _ = decode_all(seg.path)
        assert codec == "h264" and keys[0] and frames == seg.frames
    finals = set((small_disk / "recordings").rglob("*.mp4"))
    assert finals == {s.path for s in segments}  # nothing half-written under a final name
    assert not list((small_disk / "recordings").rglob(".*.tmp"))


def test_retention_after_each_segment_keeps_a_real_disk_from_filling(small_disk) -> None:
    cfg = unit_config(small_disk, need(VTEST), recording={"segment_seconds": 3},
                      retention={"min_free_percent": 45},
                      events={"pre_roll_s": 0, "post_roll_s": 0, "max_clip_s": 5})
    clock = ManualClock()
    conn = connect(db_path(small_disk))
    index, state = SegmentIndex(conn), StateStore(conn, clock)
    retention = Retention(cfg, clock, index, conn, state)
    recorder = SegmentRecorder(cfg, clock, index, state=state, on_segment=lambda s: retention.run_once())
    for frame in frames_of(cfg, clock):
        recorder.write(frame)
        assert state.read("recording").state["state"] != "error" if state.read("recording") else True
    recorder.close()
    assert retention.deleted_total > 10
    usage = shutil.disk_usage(small_disk)
    assert usage.free > 0.3 * usage.total
    assert state.read("retention").state["deleted_segments"] == retention.deleted_total
