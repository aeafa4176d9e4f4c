"""Event ledger in agent.db: the fate of every event the unit detected, so none is lost silently.

The event writer enters an event when it is first journalled (detected) and settles it once as
published, partial (published with what exists) or lost (with a reason); retention marks a published
event lost when it must delete it before upload. Counters (`events_detected`, `events_published`,
`events_partial`, `events_lost`, `events_lost.<reason>`) move in the same transaction, for status
and heartbeats, so `detected = published + partial + lost + in progress` always holds.
"""

from __future__ import annotations

import enum
import sqlite3
from dataclasses import dataclass

from agent.state import increment, open_counters

SCHEMA_SQL = """
CREATE TABLE IF NOT EXISTS event_ledger (
    event_id TEXT PRIMARY KEY,
    detected_at REAL NOT NULL,
    fate TEXT,
    reason TEXT,
    detail TEXT,
    decided_at REAL
);
-- the few events in the writer's hands, read by retention on every pass (the ledger only grows)
CREATE INDEX IF NOT EXISTS event_ledger_unsettled ON event_ledger(event_id) WHERE fate IS NULL;
"""

LOST_PREFIX = "events_lost."  # counters events_lost.<reason>


class Fate(enum.Enum):
    PUBLISHED = "published"  # clip, snapshots and record
    PARTIAL = "partial"  # record published with what exists (snapshots only, or the record alone)
    LOST = "lost"  # not published, or deleted before upload: see LossReason


class LossReason(enum.Enum):
    DISK_FULL = "disk_full"  # no space for even the record
    WRITE_ERROR = "write_error"  # another error writing its files or record
    DELETED_BEFORE_UPLOAD = "deleted_before_upload"  # retention needed the space; the link was down


COUNTER = {Fate.PUBLISHED: "events_published", Fate.PARTIAL: "events_partial", Fate.LOST: "events_lost"}


@dataclass(frozen=True)
class Summary:
    detected: int
    published: int
    partial: int
    lost: int
    lost_by_reason: dict[str, int]

    @property
    def in_progress(self) -> int:
        return self.detected - self.published - self.partial - self.lost


def open_ledger(conn: sqlite3.Connection) -> None:
    conn.executescript(SCHEMA_SQL)
    open_counters(conn)


def detected(conn: sqlite3.Connection, event_id: str, at: float) -> bool:
    """Enter a newly detected event (idempotent); True if it was new. Call inside the caller's
    transaction when it must be atomic with other writes (the journal)."""
    cur = conn.execute("INSERT OR IGNORE INTO event_ledger(event_id, detected_at) VALUES (?, ?)",
                       (event_id, at))
    if cur.rowcount:
        increment(conn, "events_detected")
    return bool(cur.rowcount)


def settle(conn: sqlite3.Connection, event_id: str, fate: Fate, at: float,
           reason: LossReason | None = None, detail: str = "") -> bool:
    """Record an event's fate once (an event not yet entered is entered as detected now); True if
    this call settled it. A published event may later become lost (retention), never the reverse."""
    detected(conn, event_id, at)
    row = conn.execute("SELECT fate FROM event_ledger WHERE event_id = ?", (event_id,)).fetchone()
    old = Fate(row[0]) if row and row[0] else None
    if old is fate or old is Fate.LOST or (old is not None and fate is not Fate.LOST):
        return False
    conn.execute("UPDATE event_ledger SET fate = ?, reason = ?, detail = ?, decided_at = ? "
                 "WHERE event_id = ?",
                 (fate.value, reason.value if reason else None, detail[:200], at, event_id))
    if old is not None:
        increment(conn, COUNTER[old], -1)
    increment(conn, COUNTER[fate])
    if fate is Fate.LOST:
        increment(conn, LOST_PREFIX + (reason.value if reason else "unknown"))
    return True


def fate_of(conn: sqlite3.Connection, event_id: str) -> tuple[Fate | None, str | None] | None:
    """(fate, reason) of an entered event; None if it was never entered."""
    row = conn.execute("SELECT fate, reason FROM event_ledger WHERE event_id = ?", (event_id,)).fetchone()
    if row is None:
        return None
    return (Fate(row[0]) if row[0] else None, row[1])


def unsettled(conn: sqlite3.Connection) -> set[str]:
    """Events detected and not yet settled: in the event writer's hands (retention leaves their folders)."""
    return {r[0] for r in conn.execute("SELECT event_id FROM event_ledger WHERE fate IS NULL")}


def summary_from_counters(counters: dict[str, int]) -> Summary:
    """The ledger's totals as read from the counters table (what status and heartbeats see)."""
    reasons = {k[len(LOST_PREFIX):]: v for k, v in sorted(counters.items())
               if k.startswith(LOST_PREFIX) and v}
    return Summary(counters.get("events_detected", 0), counters.get("events_published", 0),
                   counters.get("events_partial", 0), counters.get("events_lost", 0), reasons)


def summary(conn: sqlite3.Connection) -> Summary:
    """The totals counted from the ledger rows themselves (tests compare them with the counters)."""
    rows = conn.execute("SELECT fate, reason, count(*) FROM event_ledger GROUP BY fate, reason").fetchall()
    total = {f: 0 for f in Fate}
    reasons: dict[str, int] = {}
    detected_n = 0
    for fate, reason, n in rows:
        detected_n += n
        if fate:
            total[Fate(fate)] += n
        if fate == Fate.LOST.value:
            reasons[reason or "unknown"] = reasons.get(reason or "unknown", 0) + n
    return Summary(detected_n, total[Fate.PUBLISHED], total[Fate.PARTIAL], total[Fate.LOST], reasons)
