"""Event journal in agent.db: events that are open or waiting for their clip, so a kill -9 or a power
cut loses no event. The event writer notes them and forgets them once published; at the next start
it publishes those a previous run left behind from the footage that run recorded.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import asdict, replace

from agent.db import transaction
from agent.events.ledger import detected, open_ledger
from agent.events.tracker import CloseReason, Event

SCHEMA_SQL = """
CREATE TABLE IF NOT EXISTS event_journal (
    event_id TEXT PRIMARY KEY,
    run TEXT NOT NULL,
    closed INTEGER NOT NULL,
    event TEXT NOT NULL
);
"""


def open_journal(conn: sqlite3.Connection) -> None:
    conn.executescript(SCHEMA_SQL)
    open_ledger(conn)


def note(conn: sqlite3.Connection, run: str, ev: Event, closed: bool, at: float) -> None:
    """Record an event (its times already on the recording's UTC timeline); the first note of an
    event also enters it in the ledger as detected, in the same transaction."""
    data = asdict(ev)
    data["reason"] = ev.reason.value if ev.reason else None
    with transaction(conn):
        conn.execute("INSERT OR REPLACE INTO event_journal(event_id, run, closed, event) VALUES (?, ?, ?, ?)",
                     (ev.event_id, run, int(closed), json.dumps(data)))
        detected(conn, ev.event_id, at)


def forget(conn: sqlite3.Connection, event_id: str) -> None:
    conn.execute("DELETE FROM event_journal WHERE event_id = ?", (event_id,))


def left_behind(conn: sqlite3.Connection, run: str) -> list[tuple[Event, bool]]:
    """Events noted by other (earlier) runs and never published: (event, closed)."""
    rows = conn.execute("SELECT event, closed FROM event_journal WHERE run != ? ORDER BY event_id",
                        (run,)).fetchall()
    out = []
    for raw, closed in rows:
        data = json.loads(raw)
        data["reason"] = CloseReason(data["reason"]) if data.get("reason") else None
        out.append((Event(**data), bool(closed)))
    return out


def recovered(ev: Event, footage_end: float) -> Event:
    """An event a dead run left behind, on UTC times only (its frame times mean nothing now). A
    closed one keeps its range; an open one ends where that run's footage ends (`footage_end`,
    capped by the caller at max clip) and is marked interrupted."""
    if ev.reason is not None:
        end, clip_end, reason = ev.end_wall, ev.clip_end_wall, ev.reason
    else:
        end = clip_end = max(ev.end_wall, footage_end)
        reason = CloseReason.INTERRUPTED
    return replace(ev, start_t=ev.start_wall, end_t=end, end_wall=end, clip_start_t=ev.clip_start_wall,
                   clip_end_t=clip_end, peak_t=ev.peak_wall, reason=reason)
