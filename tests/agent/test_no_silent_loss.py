"""Nothing lost silently: on a really full disk with the link down every event is published (fully
or marked partial) or counted in events_lost with a reason, and recording goes on; the ledger's
numbers add up and status shows them."""

from __future__ import annotations

import shutil
import threading
from pathlib import Path

import pytest

from agent.clock import ManualClock
from agent.config import parse_config
from agent.db import connect, db_path
from agent.events.ledger import Fate, LossReason, open_ledger, settle, summary, summary_from_counters
from agent.events.outbox import read_event
from agent.fsutil import sha256_file
from agent.recording.index import SegmentIndex
from agent.runner import run
from agent.state import StateStore
from tests.agent.footage import T0, VTEST, footage
from tests.smalldisk import small_disk as mounted
from tests.waiting import holds_within


def test_ledger_counts_each_event_once_and_a_published_one_may_become_lost(tmp_path) -> None:
    conn = connect(db_path(tmp_path))
    open_ledger(conn)
    assert settle(conn, "e1", Fate.PUBLISHED, 1.0)
    assert not settle(conn, "e1", Fate.PUBLISHED, 2.0)  # a replay after kill -9 counts nothing
    assert not settle(conn, "e1", Fate.PARTIAL, 2.0)
    assert settle(conn, "e2", Fate.PARTIAL, 1.0)
    assert settle(conn, "e3", Fate.LOST, 1.0, LossReason.DISK_FULL, "no space")
    assert settle(conn, "e1", Fate.LOST, 3.0, LossReason.DELETED_BEFORE_UPLOAD)  # retention, link down
    assert not settle(conn, "e3", Fate.PUBLISHED, 4.0)  # lost stays lost
    counted = summary_from_counters(StateStore(conn, ManualClock()).counters())
    assert counted == summary(conn)
    assert (counted.detected, counted.published, counted.partial, counted.lost) == (3, 0, 1, 2)
    assert counted.lost_by_reason == {"deleted_before_upload": 1, "disk_full": 1}


@pytest.fixture
def small_disk(tmp_path, squeeze):
    with mounted(tmp_path, SQUEEZES[squeeze][0]) as mnt:
        yield mnt


def counters(data: Path) -> dict[str, int]:
    try:
        conn = connect(db_path(data), timeout_s=1.0)
        try:
            return StateStore(conn, ManualClock()).counters()
        finally:
            conn.close()
    except Exception:  # the agent may be creating the schema right now
        return {}


# how the disk is squeezed (its size in MB, what is left free) -> the counters that show the agent met it
SQUEEZES = {
    # 16 MB for everything: retention has to delete events never uploaded (a smaller disk fills sooner:
    # less footage to record before it shows)
    "events deleted before upload": (16, None, lambda c: c.get("events_lost.deleted_before_upload", 0) >= 3),
    # something else (not footage) leaves 5 MB: too little for the clip reserve
    "no room for clips": (24, 5_000_000,
                          lambda c: c.get("events_partial", 0) + c.get("events_lost", 0) >= 3),
}


@pytest.mark.slow
@pytest.mark.parametrize("squeeze", list(SQUEEZES))
def test_full_disk_link_down_every_event_published_or_counted_lost(small_disk, squeeze) -> None:
    """A small disk for everything (footage, events, agent.db), uploads failing (nothing listens on
    the endpoint): the agent runs until the squeeze shows, then every event is accounted for."""
    _, leave, shown = SQUEEZES[squeeze]
    if leave is not None:
        with open(small_disk / "ballast", "wb") as f:  # not footage: retention cannot delete it
            f.truncate(0)
            f.write(b"\0" * (shutil.disk_usage(small_disk).free - leave))
    cfg = parse_config({
        "unit": {"id": "full-unit", "data_dir": str(small_disk)},
        "camera": {"source": "file", "device": str(footage(VTEST)), "width": 480, "height": 360,
                   "fps": 10, "pace": "realtime", "loop": True},  # on the ManualClock: flat out
        "recording": {"segment_seconds": 2, "keyframe_interval_s": 1, "bitrate_kbps": 400},
        "events": {"max_clip_s": 20, "pre_roll_s": 2, "post_roll_s": 4},
        "upload": {"endpoint_url": "http://127.0.0.1:9", "region": "eu-west-2", "bucket": "down",
                   "access_key_id": "testing", "secret_access_key": "testing", "timeout_s": 1,
                   "monthly_budget_mb": 0},
        "status": {"enabled": False},
    }, env={})
    stop = threading.Event()
    seen: dict[str, int] = {}

    def squeezed() -> bool:  # the agent's database, polled from outside
        seen.update(counters(small_disk))
        return shown(seen) and seen.get("events_detected", 0) >= 8

    def stop_when_events_were_deleted() -> None:
        try:  # flat out on a quiet machine: under a minute; a timeout fails on `shown` below
            holds_within(squeezed, 600, interval=0.2)
        finally:
            stop.set()

    watcher = threading.Thread(target=stop_when_events_were_deleted, daemon=True)
    watcher.start()
    result = run(cfg, ManualClock(wall=T0, mono=100.0), stop=stop)
    watcher.join(10)
    assert shown(seen), f"the squeeze never showed: {seen}"

    conn = connect(db_path(small_disk))
    ledger = summary(conn)
    print("full disk, link down:", ledger)
    assert ledger == summary_from_counters(StateStore(conn, ManualClock()).counters())
    # every detected event was settled: published, partial or lost, and each loss has a reason
    assert ledger.in_progress == 0 and ledger.detected >= 8
    assert ledger.detected == ledger.published + ledger.partial + ledger.lost
    assert sum(ledger.lost_by_reason.values()) == ledger.lost and "unknown" not in ledger.lost_by_reason
    assert conn.execute("SELECT count(*) FROM event_journal").fetchone()[0] == 0
    rows = {r[0]: (r[1], r[2]) for r in conn.execute("SELECT event_id, fate, reason FROM event_ledger")}
    records = {p.stem: p for p in (small_disk / "outbox").glob("*.json")}
    for event_id, (fate, reason) in rows.items():
        if fate == Fate.LOST.value:
            assert reason in {r.value for r in LossReason}
            if reason == LossReason.DELETED_BEFORE_UPLOAD.value:  # it had been published
                assert event_id in records and not (small_disk / "events" / event_id / "clip.mp4").exists()
            continue
        rec = read_event(records[event_id])  # published (maybe partial): its record is there ...
        assert rec.partial == (fate == Fate.PARTIAL.value)
        if rec.partial:
            assert rec.extra.get("clip_missing") or rec.extra.get("snapshot_missing")
        for f in rec.files:  # ... with every file it lists, whole
            assert sha256_file(small_disk / f.path) == f.sha256
    assert set(records) <= set(rows)  # no record the ledger does not know
    for folder in (small_disk / "events").iterdir():
        assert folder.name in rows, f"{folder.name}: files of an event nobody counted"
    # recording went on: segments published right up to the end, the recorder not stuck in error
    recording = StateStore(conn, ManualClock()).read("recording").state
    assert recording["state"] == "stopped" and recording["last_segment_at"] >= result.first_frame[1] + 100
    if leave is None:  # room enough: the most recent footage is still there
        assert SegmentIndex(conn).latest().end == pytest.approx(recording["last_segment_at"])
    deleted = ledger.lost_by_reason.get(LossReason.DELETED_BEFORE_UPLOAD.value, 0)
    assert len(result.events) == ledger.published + ledger.partial + deleted
