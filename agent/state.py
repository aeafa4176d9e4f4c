"""Component state: each stage reports how it is doing into agent.db; status and heartbeats read it.

Threads and the `cctv-agent status` command share state through this table, never through shared
dicts; a row per component holds JSON and the UTC time of its last update.
"""

from __future__ import annotations

import json
import sqlite3
from typing import Any

from agent.clock import Clock

SCHEMA_SQL = """
CREATE TABLE IF NOT EXISTS component_state (
    component TEXT PRIMARY KEY,
    state TEXT NOT NULL,
    updated_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS counters (
    name TEXT PRIMARY KEY,
    value INTEGER NOT NULL
);
"""


class StateStore:
    """Report and read component state. One instance per thread (sqlite connections are per thread)."""

    def __init__(self, conn: sqlite3.Connection, clock: Clock) -> None:
        self._conn = conn
        self._clock = clock
        conn.executescript(SCHEMA_SQL)

    def report(self, component: str, **state: Any) -> None:
        self._conn.execute(
            "INSERT INTO component_state(component, state, updated_at) VALUES (?, ?, ?) "
            "ON CONFLICT(component) DO UPDATE SET state=excluded.state, updated_at=excluded.updated_at",
            (component, json.dumps(state, default=str), self._clock.time()),
        )

    def increment(self, name: str, by: int = 1) -> None:
        self._conn.execute(
            "INSERT INTO counters(name, value) VALUES (?, ?) "
            "ON CONFLICT(name) DO UPDATE SET value = value + excluded.value",
            (name, by),
        )

    def read(self, component: str) -> tuple[dict[str, Any], float] | None:
        row = self._conn.execute(
            "SELECT state, updated_at FROM component_state WHERE component = ?", (component,)
        ).fetchone()
        return (json.loads(row[0]), row[1]) if row else None

    def read_all(self) -> dict[str, tuple[dict[str, Any], float]]:
        rows = self._conn.execute("SELECT component, state, updated_at FROM component_state").fetchall()
        return {r[0]: (json.loads(r[1]), r[2]) for r in rows}

    def counters(self) -> dict[str, int]:
        return {r[0]: r[1] for r in self._conn.execute("SELECT name, value FROM counters")}
