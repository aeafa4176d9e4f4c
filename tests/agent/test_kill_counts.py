"""kill -9 at chosen moments of an event's life (open, waiting for its clip, just published): every
event the unit detected is published (fully or partial) or counted lost with a reason, the three
numbers add up, and each segment in progress at a kill is recorded as a gap with its time range."""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from agent.clock import ManualClock
from agent.db import connect, db_path
from agent.events.ledger import summary, summary_from_counters
from agent.events.outbox import read_event
from agent.fsutil import sha256_file
from agent.state import StateStore
from tests.agent.footage import VTEST, footage
from tests.waiting import wait_until

ROOT = Path(__file__).resolve().parents[2]


def write_config(tmp_path: Path) -> Path:
    cfg = tmp_path / "unit.toml"
    cfg.write_text(
        f'[unit]\nid = "k9-unit"\ndata_dir = "{tmp_path / "data"}"\n'
        f'[camera]\nsource = "file"\ndevice = "{footage(VTEST)}"\nloop = true\npace = "realtime"\n'
        "width = 480\nheight = 360\nfps = 10\n"
        "[recording]\nsegment_seconds = 2\nkeyframe_interval_s = 1\nbitrate_kbps = 300\n"
        "[events]\npre_roll_s = 2\npost_roll_s = 3\nmax_clip_s = 8\n"
        "[upload]\nenabled = false\n[status]\nenabled = false\n")
    return cfg


def query(data: Path, sql: str, args: tuple = ()) -> list[tuple]:
    """Read the running agent's database (its schema may not exist yet)."""
    try:
        conn = sqlite3.connect(f"file:{db_path(data)}?mode=ro", uri=True, timeout=2.0)
        try:
            return conn.execute(sql, args).fetchall()
        finally:
            conn.close()
    except sqlite3.Error:
        return []


def journal(data: Path, closed: int) -> set[str]:
    return {r[0] for r in query(data, "SELECT event_id FROM event_journal WHERE closed = ?", (closed,))}


def published(data: Path) -> int:
    rows = query(data, "SELECT value FROM counters WHERE name IN ('events_published', 'events_partial')")
    return sum(r[0] for r in rows)


# where to kill: a state the agent's own database shows (`old`: events a killed run left behind;
# `base`: events published before this run plus those leftovers)
KILL_AT: dict[str, Callable[[Path, set[str], int], bool]] = {
    "event open": lambda data, old, _base: bool(journal(data, 0) - old),
    "event waiting for its clip": lambda data, old, _base: bool(journal(data, 1) - old),
    "event just published": lambda data, _old, base: published(data) > base,
}


@pytest.mark.slow
def test_kill_9_detected_equals_published_plus_lost(tmp_path) -> None:
    cfg, data = write_config(tmp_path), tmp_path / "data"
    seen: set[str] = set()
    kills_in_segment = 0
    for point in [*KILL_AT, "event open", "event waiting for its clip"]:
        old = journal(data, 0) | journal(data, 1)
        base = published(data) + len(old)
        child = subprocess.Popen([sys.executable, "-m", "agent.cli", "run", "--config", str(cfg)],
                                 cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        try:
            wait_until(lambda p=point, o=old, b=base: KILL_AT[p](data, o, b), 90, point, proc=child)
            seen |= journal(data, 0) | journal(data, 1)
        finally:
            child.send_signal(signal.SIGKILL)
            child.wait(30)
            child.stderr.close()
        kills_in_segment += bool(list((data / "recordings").glob("*/.*.mp4.tmp")))
    # a clean last run settles what the kills left behind, then stops on SIGTERM
    old = journal(data, 0) | journal(data, 1)
    child = subprocess.Popen([sys.executable, "-m", "agent.cli", "run", "--config", str(cfg)],
                             cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        wait_until(lambda: not (old & (journal(data, 0) | journal(data, 1))), 90, "recovery", proc=child)
        child.send_signal(signal.SIGTERM)
        assert child.wait(60) == 0
    finally:
        child.kill()
        child.stderr.close()

    conn = connect(db_path(data))
    ledger = summary(conn)
    print("kill -9 x5:", ledger)
    assert ledger == summary_from_counters(StateStore(conn, ManualClock()).counters())
    assert conn.execute("SELECT count(*) FROM event_journal").fetchone()[0] == 0
    assert ledger.detected == ledger.published + ledger.partial + ledger.lost
    assert ledger.lost == 0  # a kill costs footage, never an event
    rows = {r[0]: r[1] for r in conn.execute("SELECT event_id, fate FROM event_ledger")}
    assert seen <= set(rows) and len(seen) >= 5
    records = {p.stem: read_event(p) for p in (data / "outbox").glob("*.json")}
    assert set(records) == set(rows)
    for event_id, rec in records.items():
        assert rec.partial == (rows[event_id] == "partial")
        for f in rec.files:
            assert sha256_file(data / f.path) == f.sha256
        if rec.partial:  # only footage lost in the segment in progress can make one partial
            assert rec.extra.get("recovered") and rec.extra.get("clip_missing")
    # each segment in progress at a kill is a gap with its time range, reported in status
    gaps = conn.execute('SELECT start, "end", reason FROM recording_gaps').fetchall()
    assert len(gaps) == kills_in_segment >= 1  # most kills land mid-segment; how many depends on timing
    assert all(reason == "killed" and 0 <= end - start < 10 for start, end, reason in gaps)
    status = subprocess.run([sys.executable, "-m", "agent.cli", "status", "--config", str(cfg), "--json"],
                            cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert status.returncode == 0, status.stderr
    assert f'"gaps": {len(gaps)}' in status.stdout and '"detected": ' + str(ledger.detected) in status.stdout
