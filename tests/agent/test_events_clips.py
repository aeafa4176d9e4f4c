"""Clip cutting by stream copy on real footage, snapshots with privacy mask, and the event writer."""

from __future__ import annotations

import sqlite3
import threading
from dataclasses import replace
from pathlib import Path

import av
import cv2
import numpy as np
import pytest

from agent import __version__
from agent.clock import ManualClock
from agent.config import parse_config
from agent.db import connect, db_path
from agent.detection.masks import PrivacyMasker
from agent.errors import InputError
from agent.events.clips import cut_clip, frame_at, write_snapshots
from agent.events.journal import note, open_journal
from agent.events.outbox import read_event
from agent.events.tracker import EventTracker
from agent.events.writer import ClosedEvent, EventWriter
from agent.fsutil import atomic_write_bytes, sha256_file
from agent.state import StateStore
from tests.agent.footage import T0, VTEST, encode_segments, footage
from tests.once import once


@pytest.fixture(scope="module")
def segments(tmp_path_factory) -> list:
    """40 s of the sample clip in four H.264 segments, encoded once per test run (read only)."""
    return once(tmp_path_factory, "segs_10s_gop20",
                lambda d: encode_segments(footage(VTEST), d, seg_s=10.0, gop=20, max_frames=400))


def _packets(path: Path) -> list[tuple[bytes, bool]]:
    with av.open(str(path)) as c:
        return [(bytes(p), p.is_keyframe) for p in c.demux(video=0) if p.size]


@pytest.mark.parametrize("start,end", [(13.3, 35.05), (3.0, 5.0), (0.0, 39.9), (20.0, 21.0)])
def test_clip_is_a_stream_copy_of_the_range(segments, tmp_path, start, end) -> None:
    clip = tmp_path / "clip.mp4"
    info = cut_clip(segments, T0 + start, T0 + end, clip)
    assert info.start <= T0 + start < info.start + 2.0  # the keyframe at or before the start (gop 2 s)
    assert info.end >= T0 + end - 0.1 and info.end <= T0 + end + 0.2
    data = clip.read_bytes()
    assert 0 <= data.find(b"moov") < data.find(b"mdat")  # faststart: index before the media
    with av.open(str(clip)) as c:
        frames = list(c.decode(video=0))
        assert c.streams.video[0].codec_context.name == "h264"
    assert frames[0].key_frame
    assert len(frames) == info.packets == round((info.end - info.start) * 10)
    assert frames[-1].time == pytest.approx(info.end - info.start - 0.1, abs=0.02)
    # No re-encode: the clip's packets are byte-for-byte the segments' packets of that range.
    source = [p for s in segments for p in _packets(s.path)]
    first = round((info.start - T0) * 10)
    assert _packets(clip) == source[first:first + info.packets]
    assert not list(tmp_path.glob(".*.tmp"))


@pytest.mark.parametrize("offset", [0.0, 0.1, 3.05, 4.0, 9.95, 12.0])
def test_frame_at_is_the_frame_a_full_decode_gives(segments, offset) -> None:
    """The snapshot frame (one decoding thread, decoder closed before the BGR conversion) is,
    pixel for pixel, the frame at that time in a plain decode of the whole segment."""
    with av.open(str(segments[0].path)) as c:
        frames = [f for f in c.decode(video=0)]
    want = next((f for f in frames if f.time >= offset - 1e-3), frames[-1])
    got = frame_at(segments[0].path, offset)
    assert got is not None and got.shape == (want.height, want.width, 3)
    assert np.array_equal(got, want.to_ndarray(format="bgr24"))


def test_clip_without_footage_is_an_input_error(segments, tmp_path) -> None:
    with pytest.raises(InputError):
        cut_clip([], T0, T0 + 5, tmp_path / "clip.mp4")
    with pytest.raises(InputError):
        cut_clip(segments, T0 + 500, T0 + 510, tmp_path / "clip.mp4")
    assert list(tmp_path.iterdir()) == []


def test_snapshots_are_masked_and_boxes_only_on_the_copy(tmp_path) -> None:
    image = np.full((360, 480, 3), 180, np.uint8)
    masker = PrivacyMasker([[(0.0, 0.0), (0.25, 0.0), (0.25, 1.0), (0.0, 1.0)]])
    plain, boxed = write_snapshots(image, [[0.5, 0.5, 0.2, 0.2]], masker, tmp_path)
    a, b = cv2.imread(str(plain)), cv2.imread(str(boxed))
    assert a[:, :100].mean() < 8 and b[:, :100].mean() < 8  # privacy mask burnt into both
    assert abs(a[:, 130:].mean() - 180) < 3
    red = (b[:, :, 2] > 200) & (b[:, :, 1] < 80)
    assert red[175:185, 239:241].any() and not ((a[:, :, 2] > 200) & (a[:, :, 1] < 80)).any()
    assert (image == 180).all()  # the caller's frame is untouched


def test_snapshots_without_a_copy_are_the_same_files(tmp_path) -> None:
    """copy=False (a frame the writer decoded itself) masks and draws in place: no 720p frame is
    copied, and both JPEGs are byte for byte those of the copying path."""
    masker = PrivacyMasker([[(0.0, 0.0), (0.25, 0.0), (0.25, 1.0), (0.0, 1.0)]])
    image = np.random.default_rng(1).integers(0, 255, (360, 480, 3), np.uint8)
    (tmp_path / "a").mkdir(), (tmp_path / "b").mkdir()
    copied = write_snapshots(image, [[0.5, 0.5, 0.2, 0.2]], masker, tmp_path / "a")
    in_place = write_snapshots(image.copy(), [[0.5, 0.5, 0.2, 0.2]], masker, tmp_path / "b", copy=False)
    assert [p.read_bytes() for p in copied] == [p.read_bytes() for p in in_place]
    frozen = image.copy()
    frozen.flags.writeable = False  # a read-only frame is copied after all, never written to
    write_snapshots(frozen, [[0.5, 0.5, 0.2, 0.2]], masker, tmp_path / "b", copy=False)
    assert (frozen == image).all()


def _config(tmp_path: Path, masks: bool = True):
    privacy = {"masks": [{"polygon": [[0, 0], [0.2, 0], [0.2, 1], [0, 1]]}]} if masks else {}
    return parse_config({"unit": {"id": "test-unit", "site": "Test St", "data_dir": str(tmp_path)},
                         "privacy": privacy}, env={})


def _event(start: float, end: float):
    tracker = EventTracker(_config(Path("/tmp")).events, "test-unit")

    class Res:
        def __init__(self, t: float, moving: bool) -> None:
            self.t, self.score, self.motion, self.calibrating = t, 0.3 if moving else 0, moving, False
            self.boxes = [[0.4, 0.4, 0.2, 0.3]] if moving else []

    closed = []
    t = 0.0
    while t < end + 20:
        closed += tracker.update(Res(t, start <= t <= end), T0 + t, round(t * 10)).closed
        t = round(t + 0.2, 6)
    return closed[0]


def test_event_writer_publishes_complete_record(segments, tmp_path) -> None:
    cfg = _config(tmp_path)
    clock = ManualClock(wall=T0 + 100)
    done = threading.Event()
    writer = EventWriter(cfg, tmp_path, clock, done, covering=lambda conn, a, b: [
        s for s in segments if s.end > a and s.start < b])
    ev = _event(12.0, 16.0)
    image = np.full((360, 480, 3), 200, np.uint8)
    writer.start()
    writer.submit(ClosedEvent(ev, image))
    writer.close_input()
    writer.join(20)
    assert not writer.is_alive() and len(writer.published) == 1 and writer.failures == 0
    rec = read_event(writer.published[0])
    assert rec.event_id == "test-unit-20260101T000012.000Z" and rec.unit_id == "test-unit"
    assert (rec.start, rec.end) == ("2026-01-01T00:00:12.000Z", "2026-01-01T00:00:16.000Z")
    assert (rec.clip_start, rec.clip_end) == ("2026-01-01T00:00:06.000Z", "2026-01-01T00:00:26.100Z")
    assert rec.peak_score == 0.3 and rec.boxes == [[0.4, 0.4, 0.2, 0.3]]
    assert rec.clock_synced is True and rec.software_version == __version__
    assert rec.site == "Test St" and rec.created_at == "2026-01-01T00:01:40.000Z"
    assert sorted(f.role for f in rec.files) == ["clip", "snapshot", "snapshot_boxes"]
    for f in rec.files:
        path = tmp_path / f.path
        assert f.size == path.stat().st_size and f.sha256 == sha256_file(path)
    snap = cv2.imread(str(tmp_path / rec.file("snapshot").path))
    assert snap[:, :40].mean() < 10 < snap[:, 200:].mean()  # privacy mask applied
    state = StateStore(connect(db_path(tmp_path)), clock).read("motion")
    assert state is not None and state.state["last_event_at"] == rec.start
    assert state.state["events_today"] == 1


def test_event_writer_waits_for_segments_then_cuts(segments, tmp_path) -> None:
    """While the covering segments are not yet closed the writer holds the event."""
    cfg = _config(tmp_path, masks=False)
    available: list = []
    done = threading.Event()
    writer = EventWriter(cfg, tmp_path, ManualClock(), done,
                         covering=lambda conn, a, b: [s for s in available if s.end > a and s.start < b])
    writer.start()
    writer.submit(ClosedEvent(_event(12.0, 14.0), None))
    available.extend(segments[:2])  # ends at 20 s: the clip needs up to 24 s
    writer.close_input()
    writer.join(1.5)
    assert writer.is_alive() and not writer.published
    holds = connect(db_path(tmp_path)).execute('SELECT start, "end" FROM holds').fetchall()
    assert [tuple(h) for h in holds] == [(T0 + 7 - 5, T0 + 24.0 + 5)]  # footage kept from retention
    available.extend(segments[2:])
    writer.join(10)
    assert not writer.is_alive() and len(writer.published) == 1
    assert connect(db_path(tmp_path)).execute("SELECT count(*) FROM holds").fetchone()[0] == 0
    rec = read_event(writer.published[0])
    # no peak image was handed over: the snapshots are taken from the clip's footage
    assert [f.role for f in rec.files] == ["clip", "snapshot", "snapshot_boxes"]


@pytest.mark.parametrize("already_published", [False, True])
def test_writer_publishes_what_a_dead_run_left_in_the_journal(segments, tmp_path, already_published) -> None:
    cfg = _config(tmp_path, masks=False)
    ev = _event(12.0, 16.0)
    conn = connect(db_path(tmp_path))
    open_journal(conn)
    # the dead run had noted the event when it opened (frame times = wall times in this test)
    note(conn, "dead-run", replace(ev, reason=None, end_t=ev.start_t, end_wall=ev.start_wall,
                                   clip_end_t=ev.start_t), closed=False, at=T0)
    if already_published:  # it died between publishing and forgetting: nothing to redo
        atomic_write_bytes(tmp_path / "outbox" / f"{ev.event_id}.json", b"{}")
    done = threading.Event()
    done.set()
    writer = EventWriter(cfg, tmp_path, ManualClock(), done, covering=lambda c, a, b: [
        s for s in segments if s.end > a and s.start < b])
    writer.start()
    writer.close_input()
    writer.join(20)
    assert conn.execute("SELECT count(*) FROM event_journal").fetchone()[0] == 0
    if already_published:
        assert writer.published == []
        return
    assert len(writer.published) == 1
    rec = read_event(writer.published[0])
    assert rec.event_id == ev.event_id and rec.extra["close_reason"] == "interrupted"
    assert rec.clip_start == "2026-01-01T00:00:06.000Z"  # keyframe before start - pre-roll
    assert rec.clip_end == "2026-01-01T00:00:40.000Z"  # the end of that run's footage
    assert sorted(f.role for f in rec.files) == ["clip", "snapshot", "snapshot_boxes"]


def test_a_database_error_does_not_kill_the_event_writer(segments, tmp_path) -> None:
    """A full disk or a long lock makes a SQLite call fail now and then; the writer thread must live on
    (a dead one still leaves the watchdog fed) and write this event and the next."""
    cfg = _config(tmp_path, masks=False)
    calls = {"n": 0}

    def covering(conn, a, b):
        calls["n"] += 1
        if calls["n"] <= 2:
            raise sqlite3.OperationalError("database or disk is full")
        return [s for s in segments if s.end > a and s.start < b]

    done = threading.Event()  # recording goes on: the writer waits for the footage
    writer = EventWriter(cfg, tmp_path, ManualClock(), done, covering=covering)
    writer.start()
    first, second = _event(3.0, 5.0), _event(22.0, 24.0)
    writer.submit(ClosedEvent(first, None))
    writer.submit(ClosedEvent(second, None))
    writer.close_input()
    writer.join(20)
    assert not writer.is_alive()
    ids = sorted(read_event(p).event_id for p in writer.published)
    assert ids == sorted([first.event_id, second.event_id]) and len(set(ids)) == 2
    assert all("clip" in [f.role for f in read_event(p).files] for p in writer.published)


@pytest.mark.parametrize("damage", ["garbage", "gone"])
def test_an_unreadable_segment_leaves_a_gap_not_a_lost_event(segments, tmp_path, damage) -> None:
    """SD-card damage (or a file gone) in one of the covering segments: the clip keeps the footage of
    the others (a gap, as for a camera reopen); it used to raise an FFmpeg/OS error and the writer
    dropped the whole event, snapshots and record included."""
    bad = tmp_path / "bad.mp4"
    if damage == "garbage":
        bad.write_bytes(b"\0" * 4096 + segments[1].path.read_bytes()[4096:])
    broken = [segments[0], replace(segments[1], path=bad), segments[2]]
    info = cut_clip(broken, T0 + 5.0, T0 + 25.0, tmp_path / "clip.mp4")
    assert info.start <= T0 + 5.0 and info.end >= T0 + 24.9
    assert info.packets == round((T0 + 10 - info.start) * 10) + round((info.end - T0 - 20) * 10)
    with av.open(str(tmp_path / "clip.mp4")) as c:
        assert sum(1 for _ in c.decode(video=0)) == info.packets
