"""The unit's local SQLite database (agent.db): segment index, upload queue, component state.

One file in WAL mode with synchronous=FULL so a committed row survives kill -9 and power loss;
each module owns its tables and creates them with CREATE TABLE IF NOT EXISTS.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import tenacity

DB_NAME = "agent.db"
CACHE_KIB = 512  # page cache per connection


def connect(path: Path, timeout_s: float = 30.0) -> sqlite3.Connection:
    """Open (creating if needed) the agent database; one connection per thread."""
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(path, timeout=timeout_s, isolation_level=None, check_same_thread=True)
    conn.row_factory = sqlite3.Row
    _enable_wal(conn)
    conn.execute("PRAGMA synchronous=FULL")
    conn.execute("PRAGMA busy_timeout=30000")
    conn.execute("PRAGMA foreign_keys=ON")
    # Each thread has its own connection, and SQLite's default page cache is up to 2 MB per
    # connection: 512 KiB each holds the hot pages of this small database (docs/architecture.md, Memory).
    conn.execute(f"PRAGMA cache_size=-{CACHE_KIB}")
    return conn


def _locked(err: BaseException) -> bool:
    return isinstance(err, sqlite3.OperationalError) and "locked" in str(err)


def _enable_wal(conn: sqlite3.Connection, attempts: int = 50) -> None:
    """Switch to WAL. On a new file that step needs the database alone and SQLite does not wait for
    it (no busy handler), so threads opening a fresh agent.db together can get 'database is locked'
    (about 2% of starts with three threads): retry briefly (10 ms more each time)."""
    retrying = tenacity.Retrying(
        retry=tenacity.retry_if_exception(_locked),
        wait=tenacity.wait_incrementing(start=0.01, increment=0.01),
        stop=tenacity.stop_after_attempt(attempts),
        reraise=True,
    )
    retrying(conn.execute, "PRAGMA journal_mode=WAL")


def db_path(data_dir: Path) -> Path:
    return data_dir / DB_NAME


@contextmanager
def transaction(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """One write transaction on an autocommit connection (as connect() opens them): BEGIN IMMEDIATE,
    COMMIT, or ROLLBACK on any error."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:  # a failed COMMIT (full disk) may have ended it already
            try:
                conn.execute("ROLLBACK")
            except sqlite3.Error:
                pass
        raise
