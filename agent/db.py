"""The unit's local SQLite database (agent.db): segment index, upload queue, component state.

One file in WAL mode with synchronous=FULL so a committed row survives kill -9 and power loss;
each module owns its tables and creates them with CREATE TABLE IF NOT EXISTS.
"""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

DB_NAME = "agent.db"


def connect(path: Path, timeout_s: float = 30.0) -> sqlite3.Connection:
    """Open (creating if needed) the agent database; one connection per thread."""
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(path, timeout=timeout_s, isolation_level=None, check_same_thread=True)
    conn.row_factory = sqlite3.Row
    _enable_wal(conn)
    conn.execute("PRAGMA synchronous=FULL")
    conn.execute("PRAGMA busy_timeout=30000")
    conn.execute("PRAGMA foreign_keys=ON")
    return conn


def _enable_wal(conn: sqlite3.Connection, attempts: int = 50) -> None:
    """Switch to WAL. On a new file that step needs the database alone and SQLite does not wait for
    it (no busy handler), so threads opening a fresh agent.db together can get 'database is locked'
    (about 2% of starts with three threads): retry briefly."""
    for attempt in range(1, attempts + 1):
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as err:
            if "locked" not in str(err) or attempt == attempts:
                raise
            time.sleep(0.01 * attempt)


def db_path(data_dir: Path) -> Path:
    return data_dir / DB_NAME
