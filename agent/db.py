"""The unit's local SQLite database (agent.db): segment index, upload queue, component state.

One file in WAL mode with synchronous=FULL so a committed row survives kill -9 and power loss;
each module owns its tables and creates them with CREATE TABLE IF NOT EXISTS.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

DB_NAME = "agent.db"


def connect(path: Path, timeout_s: float = 30.0) -> sqlite3.Connection:
    """Open (creating if needed) the agent database; one connection per thread."""
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(path, timeout=timeout_s, isolation_level=None, check_same_thread=True)
    conn.row_factory = sqlite3.Row
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    conn.execute("PRAGMA busy_timeout=30000")
    conn.execute("PRAGMA foreign_keys=ON")
    return conn


def db_path(data_dir: Path) -> Path:
    return data_dir / DB_NAME
