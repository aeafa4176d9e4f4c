"""Recording gaps: footage lost because the agent died (kill -9, power cut) with a segment in progress.

At start, before the recorder deletes the unfinished `.<name>.mp4.tmp` files of the previous run, the
runner calls `record_lost_segments`: each becomes a row in `recording_gaps` with its time range (from
its start to the last frame that run reported) and the reason, is logged, and is reported in the
`gaps` component state that `cctv-agent status` and the heartbeat show.
"""

from __future__ import annotations

import logging
import sqlite3
from dataclasses import dataclass
from pathlib import Path

from agent.clock import Clock, iso_utc
from agent.db import transaction
from agent.fsutil import TMP_SUFFIX
from agent.recording.index import SegmentIndex, start_from_name
from agent.state import StateStore, increment, open_counters

log = logging.getLogger(__name__)

SCHEMA_SQL = """
CREATE TABLE IF NOT EXISTS recording_gaps (
    id INTEGER PRIMARY KEY,
    start REAL NOT NULL,
    "end" REAL NOT NULL,
    reason TEXT NOT NULL,
    found_at REAL NOT NULL
);
"""

POWER_CUT = "power_cut"  # the previous run was on another boot: the unit lost power or rebooted
KILLED = "killed"  # same boot: the agent process died without closing its segment (kill -9, OOM)


@dataclass(frozen=True)
class Gap:
    start: float  # UTC epoch seconds
    end: float
    reason: str


def open_gaps(conn: sqlite3.Connection) -> None:
    conn.executescript(SCHEMA_SQL)
    open_counters(conn)


def _unfinished(root: Path) -> list[Path]:
    return sorted(root.glob(f"*/.*.mp4{TMP_SUFFIX}")) if root.is_dir() else []


def lost_range(tmp: Path, index: SegmentIndex, last_frame_at: float | None) -> tuple[float, float] | None:
    """The time range an unfinished segment file covered: from its start (the end of the last
    published segment when that is just before the time in its name, else that time) to the last
    frame the dead run reported (else the file's last write)."""
    start = start_from_name(tmp.with_name(tmp.name[1:-len(TMP_SUFFIX)]))
    if start is None:
        return None
    latest = index.latest()
    if latest is not None and abs(latest.end - start) < 5.0:
        start = latest.end
    try:
        written = tmp.stat().st_mtime
    except FileNotFoundError:
        return None
    end = max((t for t in (written, last_frame_at) if t is not None and t >= start), default=start)
    return start, end


def record_lost_segments(conn: sqlite3.Connection, root: Path, clock: Clock,
                         boot_id: str | None) -> list[Gap]:
    """Record a gap for each unfinished segment a dead run left in `root` (the recordings folder)."""
    open_gaps(conn)
    state = StateStore(conn, clock)
    files = _unfinished(root)
    if not files:
        return []
    previous = state.read("agent")
    same_boot = previous is not None and boot_id is not None and previous.state.get("boot_id") == boot_id
    reason = KILLED if same_boot else POWER_CUT
    camera = state.read("camera")
    last_frame = camera.state.get("last_frame_at") if camera is not None else None
    index = SegmentIndex(conn)
    gaps = []
    for tmp in files:
        span = lost_range(tmp, index, last_frame if isinstance(last_frame, int | float) else None)
        if span is None:
            continue
        gap = Gap(span[0], span[1], reason)
        with transaction(conn):
            conn.execute('INSERT INTO recording_gaps(start, "end", reason, found_at) VALUES (?, ?, ?, ?)',
                         (gap.start, gap.end, gap.reason, clock.time()))
            increment(conn, "recording_gaps")
        log.warning("footage lost (%s): the segment in progress %s .. %s (%.1f s) was never finished",
                    reason.replace("_", " "), iso_utc(gap.start), iso_utc(gap.end), gap.end - gap.start)
        gaps.append(gap)
    if gaps:
        last = gaps[-1]
        total = int(conn.execute("SELECT count(*) FROM recording_gaps").fetchone()[0])
        state.report("gaps", count=total, last_start=last.start, last_end=last.end, last_reason=last.reason)
    return gaps


def gaps_between(conn: sqlite3.Connection, start: float, end: float) -> list[Gap]:
    """Recorded gaps overlapping [start, end] (an event's clip range)."""
    open_gaps(conn)
    rows = conn.execute('SELECT start, "end", reason FROM recording_gaps WHERE "end" > ? AND start < ? '
                        "ORDER BY start", (start, end)).fetchall()
    return [Gap(r[0], r[1], r[2]) for r in rows]
