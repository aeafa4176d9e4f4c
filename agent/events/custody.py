"""Custody of events between detection and the outbox: the journal, the ledger and the footage holds.

The event writer's one door to agent.db. An event is journalled (and entered in the ledger) when it
opens and again when it closes; its footage is held from retention while its clip waits; `settle()`
records its fate, forgets it and releases the hold in one transaction. Holds are this module's table;
retention reads them through `active_holds()` and `event_holds()`.
"""

from __future__ import annotations

import logging
import sqlite3

from agent.clock import Clock
from agent.db import transaction
from agent.events import journal
from agent.events.ledger import Fate, LossReason, settle
from agent.events.tracker import Event

log = logging.getLogger(__name__)

HOLDS_SQL = """
CREATE TABLE IF NOT EXISTS holds (
    id INTEGER PRIMARY KEY,
    start REAL NOT NULL,
    "end" REAL NOT NULL,
    reason TEXT NOT NULL,
    expires REAL
);
"""
EVENT_HOLD = "event "  # reason prefix of the holds placed on a waiting clip's footage
HOLD_MARGIN_S = 5.0
HOLD_EXPIRES_S = 24 * 3600.0  # a hold the writer never released (it died) lapses by itself


def open_holds(conn: sqlite3.Connection) -> None:
    conn.executescript(HOLDS_SQL)


def add_hold(conn: sqlite3.Connection, start: float, end: float, reason: str,
             expires: float | None = None) -> int:
    """Protect footage in [start, end] (UTC) from deletion until `expires` (None = until removed)."""
    open_holds(conn)
    cur = conn.execute('INSERT INTO holds(start, "end", reason, expires) VALUES (?, ?, ?, ?)',
                       (start, end, reason, expires))
    return int(cur.lastrowid or 0)


def remove_hold(conn: sqlite3.Connection, hold_id: int) -> None:
    conn.execute("DELETE FROM holds WHERE id = ?", (hold_id,))


def _evidential(name: str) -> str:
    return f"evidential {name}: "


def add_evidential_hold(conn: sqlite3.Connection, name: str, start: float, end: float, reason: str,
                        until: float | None = None) -> bool:
    """The control room's named hold (hold_range); a repeat of the same name changes nothing."""
    open_holds(conn)
    prefix = _evidential(name)
    if conn.execute("SELECT 1 FROM holds WHERE substr(reason, 1, ?) = ?", (len(prefix), prefix)).fetchone():
        return False
    add_hold(conn, start, end, prefix + reason, expires=until)
    log.info("evidential hold %s: footage %.0f .. %.0f kept past retention", name, start, end)
    return True


def release_evidential_hold(conn: sqlite3.Connection, name: str) -> int:
    """Remove the named hold (release_hold); the footage then ages out as usual."""
    open_holds(conn)
    prefix = _evidential(name)
    cur = conn.execute("DELETE FROM holds WHERE substr(reason, 1, ?) = ?", (len(prefix), prefix))
    log.info("evidential hold %s released", name)
    return int(cur.rowcount or 0)


def active_holds(conn: sqlite3.Connection, now: float) -> list[tuple[float, float]]:
    """The held time ranges, after dropping the expired holds."""
    conn.execute("DELETE FROM holds WHERE expires IS NOT NULL AND expires < ?", (now,))
    return [(r[0], r[1]) for r in conn.execute('SELECT start, "end" FROM holds')]


def event_holds(conn: sqlite3.Connection) -> int:
    """How many events are waiting for their clip (each holds its footage)."""
    return int(conn.execute("SELECT count(*) FROM holds WHERE reason LIKE ?",
                            (EVENT_HOLD + "%",)).fetchone()[0])


class Custody:
    """One per writer thread (its connection). Run id: journal entries of this run."""

    def __init__(self, conn: sqlite3.Connection, clock: Clock, run_id: str) -> None:
        self._conn = conn
        self._clock = clock
        self.run_id = run_id
        journal.open_journal(conn)
        open_holds(conn)

    def note(self, ev: Event, closed: bool) -> None:
        """Journal an opened or closed event (times on the recording's timeline); ledger: detected."""
        journal.note(self._conn, self.run_id, ev, closed, self._clock.time())

    def hold(self, ev: Event) -> int:
        """Protect the event's footage from retention until it is settled (expires on its own)."""
        return add_hold(self._conn, ev.clip_start_wall - HOLD_MARGIN_S, ev.clip_end_wall + HOLD_MARGIN_S,
                        EVENT_HOLD + ev.event_id, self._clock.time() + HOLD_EXPIRES_S)

    def settle(self, event_id: str, hold_id: int | None, fate: Fate, reason: LossReason | None = None,
               detail: str = "") -> None:
        """The event's fate in the ledger, its journal entry forgotten, its hold released: all or
        nothing (sqlite3.Error if the database cannot be written; the journal then keeps it)."""
        with transaction(self._conn):
            settle(self._conn, event_id, fate, self._clock.time(), reason, detail)
            journal.forget(self._conn, event_id)
            if hold_id is not None:
                remove_hold(self._conn, hold_id)

    def left_behind(self) -> list[tuple[Event, bool]]:
        """Events earlier runs journalled and never settled: (event, closed)."""
        return journal.left_behind(self._conn, self.run_id)
