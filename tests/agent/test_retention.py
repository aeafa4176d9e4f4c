"""Retention on a simulated disk: age limit, free-space reserve, deletion order (unheld footage,
uploaded events, held footage, pending events counted as lost), and recording keeps going."""

from __future__ import annotations

import os
import threading
from pathlib import Path

from agent.clock import ManualClock
from agent.db import connect, db_path, transaction
from agent.events.ledger import Fate, detected, fate_of, open_ledger, settle
from agent.recording.housekeeping import retention_loop
from agent.recording.retention import DiskUsage, Retention, add_hold, uploaded_marker
from agent.recording.segments import SegmentIndex, SegmentRecorder
from agent.sources import open_source
from agent.state import StateStore
from tests.agent.recording_support import VTEST, need, unit_config

MB = 1 << 20


class FakeDisk:
    """A disk of `total` bytes: used space is the footage under data_dir plus `other` bytes."""

    def __init__(self, data_dir: Path, total: int, other: int = 0) -> None:
        self.data_dir, self.total, self.other = data_dir, total, other

    def __call__(self, path: Path) -> DiskUsage:
        footage = [f for d in ("recordings", "events") for f in (self.data_dir / d).rglob("*")]
        used = self.other + sum(f.stat().st_size for f in footage if f.is_file())
        return DiskUsage(self.total, used, max(0, self.total - used))


def make_event(data_dir: Path, event_id: str, size: int, mtime: float, uploaded: bool) -> Path:
    folder = data_dir / "events" / event_id
    folder.mkdir(parents=True)
    (folder / "clip.mp4").write_bytes(os.urandom(size))
    os.utime(folder, (mtime, mtime))
    if uploaded:
        marker = uploaded_marker(data_dir, event_id)
        marker.parent.mkdir(parents=True, exist_ok=True)
        marker.touch()
    return folder


def fake_segment(index: SegmentIndex, root: Path, start: float, size: int):
    path = root / "recordings" / "2026-01-01" / f"unit-1_{int(start)}.mp4"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"\0" * size)
    return index.add(path, start, start + 10, 100, size, "x", True)


def setup(tmp_path, **retention):
    cfg = unit_config(tmp_path, retention={"min_free_percent": 20, **retention})
    clock = ManualClock(wall=1_767_225_600.0 + 40 * 86400)
    conn = connect(db_path(tmp_path))
    return cfg, clock, conn, SegmentIndex(conn), StateStore(conn, clock)


def test_age_limit_deletes_old_footage_only(tmp_path) -> None:
    cfg, clock, conn, index, state = setup(tmp_path, max_age_days=31)
    now = clock.time()
    old = fake_segment(index, tmp_path, now - 32 * 86400, 1000)
    held_old = fake_segment(index, tmp_path, now - 33 * 86400, 1000)
    young = fake_segment(index, tmp_path, now - 30 * 86400, 1000)
    add_hold(conn, held_old.start, held_old.end, "police request")
    disk = FakeDisk(tmp_path, total=1000 * MB)
    report = Retention(cfg, clock, index, conn, state, disk_usage=disk).run_once()
    assert report.deleted_segments == 1 and not old.path.exists()
    assert {s.id for s in index.all()} == {held_old.id, young.id}
    row = state.read("retention").state
    assert row["oldest_footage_at"] == held_old.start and row["deleted_segments"] == 1
    assert row["total_bytes"] == 1000 * MB


def test_disk_pressure_deletes_in_order_and_counts_lost_events(tmp_path) -> None:
    cfg, clock, conn, index, state = setup(tmp_path)
    now = clock.time()
    segs = [fake_segment(index, tmp_path, now - 3600 + i * 10, MB) for i in range(4)]
    held = fake_segment(index, tmp_path, now - 7200, MB)  # oldest, but held
    add_hold(conn, held.start, held.end, "upload requested", expires=now + 3600)
    done = make_event(tmp_path, "unit-1-a", MB, now - 5000, uploaded=True)
    pending = make_event(tmp_path, "unit-1-b", MB, now - 6000, uploaded=False)
    disk = FakeDisk(tmp_path, total=100 * MB)
    reserve = 20 * MB  # min_free_percent 20 of 100 MB

    def short_by(items: int) -> list[str]:
        """Make the disk `items` MB short of the reserve, run retention, return what went."""
        footage = disk(tmp_path).used - disk.other
        disk.other = disk.total - footage - (reserve - items * MB)
        before = {p.name for d in ("recordings", "events") for p in (tmp_path / d).rglob("*")}
        Retention(cfg, clock, index, conn, state, disk_usage=disk).run_once()
        after = {p.name for d in ("recordings", "events") for p in (tmp_path / d).rglob("*")}
        return sorted(before - after - {"clip.mp4", "2026-01-01"})

    assert short_by(0) == []
    assert short_by(2) == sorted([segs[0].path.name, segs[1].path.name])  # oldest unheld first
    assert short_by(2) == sorted([segs[2].path.name, segs[3].path.name])
    gone = short_by(1)  # next: the uploaded event (not the older held segment, not the pending event)
    assert "unit-1-a" in gone and not done.exists() and held.path.exists() and pending.exists()
    assert state.counters().get("events_lost", 0) == 0
    assert short_by(1) == [held.path.name] and pending.exists()  # then held footage
    assert "unit-1-b" in short_by(1)  # last resort: the pending event, counted as lost
    assert not pending.exists() and state.counters()["events_lost"] == 1
    assert disk(tmp_path).free >= reserve


def test_an_event_still_being_written_is_left_to_its_writer(tmp_path) -> None:
    """Under any pressure retention never deletes the folder of an event the writer has not settled
    (it settles that one itself, partial or lost): once published, it is the last resort as before.
    Seen in a CI run: the folder went mid-write and the event, never published, was counted as
    deleted before upload."""
    cfg, clock, conn, index, state = setup(tmp_path)
    now = clock.time()
    writing = make_event(tmp_path, "unit-1-w", MB, now - 6000, uploaded=False)
    open_ledger(conn)
    with transaction(conn):
        detected(conn, "unit-1-w", now - 6000)
    disk = FakeDisk(tmp_path, total=100 * MB, other=99 * MB)  # far short of the reserve
    Retention(cfg, clock, index, conn, state, disk_usage=disk).run_once()
    assert writing.exists() and fate_of(conn, "unit-1-w") == (None, None)
    with transaction(conn):
        settle(conn, "unit-1-w", Fate.PUBLISHED, now)
    Retention(cfg, clock, index, conn, state, disk_usage=disk).run_once()
    assert not writing.exists() and fate_of(conn, "unit-1-w") == (Fate.LOST, "deleted_before_upload")


def test_full_disk_keeps_recording_and_deletes_oldest(tmp_path) -> None:
    cfg = unit_config(tmp_path, need(VTEST), recording={"segment_seconds": 5},
                      retention={"min_free_percent": 10}, events={"pre_roll_s": 0, "post_roll_s": 0,
                                                                 "max_clip_s": 5})
    clock = ManualClock()
    conn = connect(db_path(tmp_path))
    index = SegmentIndex(conn)
    disk = FakeDisk(tmp_path, total=12 * MB)  # 16 segments of ~0.9 MB do not fit; the reserve > one
    retention = Retention(cfg, clock, index, conn, StateStore(conn, clock), disk_usage=disk)
    published = []

    def after_segment(seg) -> None:
        published.append(seg)
        retention.run_once()

    recorder = SegmentRecorder(cfg, clock, index, on_segment=after_segment)
    source = open_source(cfg.camera, clock)
    while (frame := source.read(1.0)) is not None:
        if frame.t > clock.monotonic():
            clock.advance(frame.t - clock.monotonic())
        recorder.write(frame)
        usage = disk(tmp_path)
        assert usage.free > 0  # the disk never fills
    recorder.close()
    retention.run_once()
    kept = index.all()
    assert len(published) == 16 and retention.deleted_total == len(published) - len(kept) > 0
    assert kept == published[-len(kept):]  # the oldest went first; the newest are all there
    usage = disk(tmp_path)
    assert usage.free >= usage.total * 0.10
    assert all(s.path.exists() for s in kept)


def test_without_uploads_events_age_out_like_footage(tmp_path) -> None:
    # upload.enabled = false: no uploaded markers ever appear, yet events must not outlive max_age_days
    cfg = unit_config(tmp_path, retention={"max_age_days": 31}, upload={"enabled": False})
    clock = ManualClock(wall=1_767_225_600.0 + 40 * 86400)
    now = clock.time()
    old = make_event(tmp_path, "unit-1-old", 1000, now - 32 * 86400, uploaded=False)
    young = make_event(tmp_path, "unit-1-young", 1000, now - 30 * 86400, uploaded=False)
    stop = threading.Event()
    stop.set()  # one pass
    retention_loop(cfg, clock, stop)
    assert not old.exists() and young.exists()
    assert StateStore(connect(db_path(tmp_path)), clock).counters().get("events_lost", 0) == 0


def test_with_uploads_an_old_event_not_yet_uploaded_is_kept(tmp_path) -> None:
    cfg = unit_config(tmp_path, retention={"max_age_days": 31}, upload={"bucket": "b"})
    clock = ManualClock(wall=1_767_225_600.0 + 40 * 86400)
    pending = make_event(tmp_path, "unit-1-old", 1000, clock.time() - 32 * 86400, uploaded=False)
    stop = threading.Event()
    stop.set()
    retention_loop(cfg, clock, stop)
    assert pending.exists()


def test_an_event_uploaded_just_before_a_crash_ages_out_without_its_marker(tmp_path) -> None:
    """kill -9 between the last job's DONE (committed) and the uploaded/<id> marker: the database says
    complete, and it is the source of truth; the event must not be kept forever, nor counted lost."""
    from agent.upload.queue import JobKind, JobState, Lane, NewJob, UploadQueue

    cfg = unit_config(tmp_path, retention={"max_age_days": 31}, upload={"bucket": "b"})
    clock = ManualClock(wall=1_767_225_600.0 + 40 * 86400)
    now = clock.time()
    done = make_event(tmp_path, "unit-1-done", 1000, now - 32 * 86400, uploaded=False)
    waiting = make_event(tmp_path, "unit-1-waiting", 1000, now - 32 * 86400, uploaded=False)
    q = UploadQueue.open(connect(db_path(tmp_path)))
    for eid in ("unit-1-done", "unit-1-waiting"):
        q.add_event(eid, [NewJob(JobKind.FILE, "snapshot", Lane.FAST, f"events/{eid}/clip.mp4", "k", 1000)],
                    now - 32 * 86400, {})
    job = q.conn.execute("SELECT id FROM upload_jobs WHERE event_id = 'unit-1-done'").fetchone()[0]
    q.set_state(job, JobState.DONE, now=now - 32 * 86400)  # ... and the crash, before the marker
    stop = threading.Event()
    stop.set()
    retention_loop(cfg, clock, stop)
    assert not done.exists() and waiting.exists()


def test_a_database_error_does_not_end_retention(tmp_path, monkeypatch) -> None:
    """A long lock or a full disk makes one pass fail; the retention thread must live on (a dead one
    keeps footage past max_age_days until the disk fills)."""
    import sqlite3

    cfg = unit_config(tmp_path, retention={"max_age_days": 31}, upload={"enabled": False})
    clock = ManualClock(wall=1_767_225_600.0 + 40 * 86400)
    old = make_event(tmp_path, "unit-1-old", 1000, clock.time() - 32 * 86400, uploaded=False)
    stop = threading.Event()
    real = Retention.run_once
    calls = []

    def flaky(self):
        calls.append(1)
        if len(calls) == 1:
            raise sqlite3.OperationalError("database is locked")
        stop.set()
        return real(self)

    monkeypatch.setattr(Retention, "run_once", flaky)
    retention_loop(cfg, clock, stop, interval_s=0.01)
    assert len(calls) == 2 and not old.exists()
