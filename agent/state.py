"""Component state: each stage reports how it is doing into agent.db; status and heartbeats read it.

Threads and the `cctv-agent status` command share state through this table, never through shared
dicts; a row per component holds JSON, the UTC time of its last update and the monotonic time
(CLOCK_MONOTONIC is system-wide, so another process can judge freshness even after a clock jump).
"""

from __future__ import annotations

import json
import logging
import sqlite3
from dataclasses import dataclass
from typing import Any

from agent.clock import Clock

log = logging.getLogger(__name__)
REPORT_ERROR_LOG_S = 60.0


@dataclass(frozen=True)
class ComponentState:
    state: dict[str, Any]
    updated_at: float  # wall clock, UTC epoch seconds
    updated_mono: float  # CLOCK_MONOTONIC seconds


# Component names and the fields each reports (see docs/architecture.md):
# camera, recording, retention, motion, upload, clock, status.

SCHEMA_SQL = """
CREATE TABLE IF NOT EXISTS component_state (
    component TEXT PRIMARY KEY,
    state TEXT NOT NULL,
    updated_at REAL NOT NULL,
    updated_mono REAL NOT NULL
);
"""
COUNTERS_SQL = """
CREATE TABLE IF NOT EXISTS counters (
    name TEXT PRIMARY KEY,
    value INTEGER NOT NULL
);
"""


def open_counters(conn: sqlite3.Connection) -> None:
    conn.executescript(COUNTERS_SQL)


def increment(conn: sqlite3.Connection, name: str, by: int = 1) -> None:
    """Add to a counter (inside the caller's transaction, if any)."""
    conn.execute("INSERT INTO counters(name, value) VALUES (?, ?) "
                 "ON CONFLICT(name) DO UPDATE SET value = value + excluded.value", (name, by))


class StateStore:
    """Report and read component state. One instance per thread (sqlite connections are per thread)."""

    def __init__(self, conn: sqlite3.Connection, clock: Clock) -> None:
        self._conn = conn
        self._clock = clock
        self._failed_at: dict[str, float] = {}
        conn.executescript(SCHEMA_SQL + COUNTERS_SQL)

    def report(self, component: str, **state: Any) -> None:
        """Best effort: a database that cannot be written now (a full disk, a long lock) costs this
        report (logged), never the reporting thread; the stale row shows in status and liveness."""
        try:
            self._conn.execute(
                "INSERT INTO component_state(component, state, updated_at, updated_mono) VALUES (?, ?, ?, ?) "
                "ON CONFLICT(component) DO UPDATE SET state=excluded.state, "
                "updated_at=excluded.updated_at, updated_mono=excluded.updated_mono",
                (component, json.dumps(state, default=str), self._clock.time(), self._clock.monotonic()),
            )
        except sqlite3.OperationalError as err:
            now = self._clock.monotonic()
            if now - self._failed_at.get(component, -1e9) >= REPORT_ERROR_LOG_S:
                self._failed_at[component] = now
                log.error("%s state not stored: %s", component, err)

    def increment(self, name: str, by: int = 1) -> None:
        increment(self._conn, name, by)

    def read(self, component: str) -> ComponentState | None:
        row = self._conn.execute(
            "SELECT state, updated_at, updated_mono FROM component_state WHERE component = ?", (component,)
        ).fetchone()
        return ComponentState(json.loads(row[0]), row[1], row[2]) if row else None

    def read_all(self) -> dict[str, ComponentState]:
        rows = self._conn.execute(
            "SELECT component, state, updated_at, updated_mono FROM component_state"
        ).fetchall()
        return {r[0]: ComponentState(json.loads(r[1]), r[2], r[3]) for r in rows}

    def counters(self) -> dict[str, int]:
        return {r[0]: r[1] for r in self._conn.execute("SELECT name, value FROM counters")}
