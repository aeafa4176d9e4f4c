"""Segment index: one SQLite row per published recording segment (in agent.db), so events can find
the footage covering a time range and retention can delete oldest-first without scanning the disk.

Times are UTC epoch seconds. Rows are added only after the file is published under its final name;
`reconcile` repairs the index after a crash (indexes published files, drops rows of missing files).
"""

from __future__ import annotations

import logging
import re
import sqlite3
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import av

from agent.fsutil import sha256_file

log = logging.getLogger(__name__)

SCHEMA_SQL = """
CREATE TABLE IF NOT EXISTS segments (
    id INTEGER PRIMARY KEY,
    path TEXT NOT NULL UNIQUE,
    start REAL NOT NULL,
    "end" REAL NOT NULL,
    frames INTEGER NOT NULL,
    size INTEGER NOT NULL,
    sha256 TEXT NOT NULL,
    clock_synced INTEGER NOT NULL,
    mono_start REAL,
    run_id TEXT
);
CREATE INDEX IF NOT EXISTS segments_start ON segments(start);
CREATE INDEX IF NOT EXISTS segments_end ON segments("end");
"""

NAME_RE = re.compile(r"_(\d{8}T\d{6}\.\d{3})Z\.mp4$")


@dataclass(frozen=True)
class Segment:
    id: int
    path: Path
    start: float  # UTC epoch seconds of the first frame
    end: float  # UTC epoch seconds just after the last frame
    frames: int
    size: int
    sha256: str
    clock_synced: bool  # False: recorded before the clock was known good

    @property
    def duration(self) -> float:
        return self.end - self.start


def _row(r: sqlite3.Row) -> Segment:
    return Segment(r["id"], Path(r["path"]), r["start"], r["end"], r["frames"], r["size"], r["sha256"],
                   bool(r["clock_synced"]))


def start_from_name(path: Path) -> float | None:
    """UTC start time carried in a segment file name (unit_YYYYMMDDTHHMMSS.mmmZ.mp4)."""
    m = NAME_RE.search(path.name)
    if not m:
        return None
    return datetime.strptime(m.group(1), "%Y%m%dT%H%M%S.%f").replace(tzinfo=UTC).timestamp()


def probe_segment(path: Path) -> tuple[int, float] | None:
    """(frames, duration in seconds) of a segment file, decoding it fully; None if unreadable."""
    try:
        with av.open(str(path)) as c:
            stream = c.streams.video[0]
            times = [f.time for f in c.decode(stream) if f.time is not None]
    except (av.error.FFmpegError, IndexError):
        return None
    if not times:
        return None
    step = (times[-1] - times[0]) / (len(times) - 1) if len(times) > 1 else 0.1
    return len(times), times[-1] - times[0] + step


class SegmentIndex:
    """The segments table. One instance per thread (sqlite connections are per thread)."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn
        conn.executescript(SCHEMA_SQL)

    def add(self, path: Path, start: float, end: float, frames: int, size: int, sha256: str,
            clock_synced: bool, mono_start: float | None = None, run_id: str | None = None) -> Segment:
        cur = self._conn.execute(
            'INSERT INTO segments(path, start, "end", frames, size, sha256, clock_synced, mono_start, '
            "run_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (str(path), start, end, frames, size, sha256, int(clock_synced), mono_start, run_id),
        )
        return Segment(int(cur.lastrowid or 0), path, start, end, frames, size, sha256, clock_synced)

    def covering(self, start: float, end: float) -> list[Segment]:
        """Segments overlapping [start, end], ordered by start time."""
        rows = self._conn.execute(
            'SELECT * FROM segments WHERE "end" > ? AND start < ? ORDER BY start, id', (start, end)
        ).fetchall()
        return [_row(r) for r in rows]

    def latest(self) -> Segment | None:
        r = self._conn.execute('SELECT * FROM segments ORDER BY "end" DESC, id DESC LIMIT 1').fetchone()
        return _row(r) if r else None

    def oldest(self, limit: int = 1) -> list[Segment]:
        rows = self._conn.execute("SELECT * FROM segments ORDER BY start, id LIMIT ?", (limit,)).fetchall()
        return [_row(r) for r in rows]

    def older_than(self, ts: float) -> list[Segment]:
        rows = self._conn.execute('SELECT * FROM segments WHERE "end" < ? ORDER BY start', (ts,)).fetchall()
        return [_row(r) for r in rows]

    def all(self) -> list[Segment]:
        return [_row(r) for r in self._conn.execute("SELECT * FROM segments ORDER BY start, id")]

    def get(self, segment_id: int) -> Segment | None:
        r = self._conn.execute("SELECT * FROM segments WHERE id = ?", (segment_id,)).fetchone()
        return _row(r) if r else None

    def max_id(self) -> int:
        """The newest row id (0 for none): segments of a run started after this have larger ids."""
        return int(self._conn.execute("SELECT coalesce(max(id), 0) FROM segments").fetchone()[0])

    def wall_at(self, t: float, after_id: int) -> float | None:
        """UTC of monotonic frame time `t` on the timeline of the run whose segments have ids over
        `after_id` (mapped through the segment starting last at or before `t`, else the first);
        None while that run has no segment yet."""
        sql = ("SELECT start, mono_start FROM segments WHERE id > ? AND mono_start IS NOT NULL {} "
               "ORDER BY mono_start {} LIMIT 1")
        row = self._conn.execute(sql.format("AND mono_start <= ?", "DESC"), (after_id, t)).fetchone()
        if row is None:
            row = self._conn.execute(sql.format("", "ASC"), (after_id,)).fetchone()
        return None if row is None else row[0] + (t - row[1])

    def remove(self, segment_id: int) -> None:
        self._conn.execute("DELETE FROM segments WHERE id = ?", (segment_id,))

    def retime(self, run_id: str, delta: float) -> int:
        """Shift every segment of one recording run by `delta` seconds (after a clock step)."""
        cur = self._conn.execute(
            'UPDATE segments SET start = start + ?, "end" = "end" + ? WHERE run_id = ?',
            (delta, delta, run_id),
        )
        return cur.rowcount

    def reconcile(self, root: Path) -> tuple[int, int]:
        """Drop rows whose file is gone and index published files that have no row (a crash between
        rename and insert). Returns (rows dropped, files added)."""
        dropped = added = 0
        known = set()
        for seg in self.all():
            if seg.path.exists():
                known.add(str(seg.path))
            else:
                self.remove(seg.id)
                dropped += 1
        for path in sorted(root.glob("*/*.mp4")) if root.is_dir() else []:
            if str(path) in known:
                continue
            start, probed = start_from_name(path), probe_segment(path)
            if start is None or probed is None:
                log.warning("recording %s is not a readable segment; left alone", path)
                continue
            frames, duration = probed
            self.add(path, start, start + duration, frames, path.stat().st_size, sha256_file(path), False)
            added += 1
        if dropped or added:
            log.info("segment index reconciled: %d rows dropped, %d files indexed", dropped, added)
        return dropped, added
