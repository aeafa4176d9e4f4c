"""Tables of the upload queue in agent.db (owned by queue.py's UploadQueue): created once when the
service opens the database, with columns an older unit's database lacks added in place.
"""

from __future__ import annotations

import sqlite3

SCHEMA_SQL = """
CREATE TABLE IF NOT EXISTS upload_events (
    event_id TEXT PRIMARY KEY,
    state TEXT NOT NULL,
    error TEXT,
    priority INTEGER NOT NULL DEFAULT 0,
    budget_override INTEGER NOT NULL DEFAULT 0,
    created_at REAL NOT NULL,
    completed_at REAL
);
CREATE TABLE IF NOT EXISTS upload_jobs (
    id INTEGER PRIMARY KEY,
    event_id TEXT NOT NULL REFERENCES upload_events(event_id),
    kind TEXT NOT NULL,
    role TEXT NOT NULL,
    lane TEXT NOT NULL,
    stage INTEGER NOT NULL,
    path TEXT,
    key TEXT,
    size INTEGER NOT NULL DEFAULT 0,
    sha256 TEXT,
    content_type TEXT,
    state TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    retry_at REAL NOT NULL DEFAULT 0,
    last_error TEXT,
    upload_id TEXT,
    part_size INTEGER,
    created_at REAL NOT NULL,
    done_at REAL,
    UNIQUE(event_id, role)
);
CREATE INDEX IF NOT EXISTS upload_jobs_pick ON upload_jobs(lane, state, retry_at);
CREATE TABLE IF NOT EXISTS upload_parts (
    job_id INTEGER NOT NULL REFERENCES upload_jobs(id),
    part_number INTEGER NOT NULL,
    size INTEGER NOT NULL,
    etag TEXT NOT NULL,
    checksum_sha256 TEXT NOT NULL,
    PRIMARY KEY (job_id, part_number)
);
CREATE TABLE IF NOT EXISTS upload_stale (
    upload_id TEXT PRIMARY KEY,
    key TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS upload_meta (
    name TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
"""


# Columns added after the first release: (table, column, declaration); added at open if missing.
MIGRATIONS = (("upload_jobs", "part_size", "INTEGER"),)


def create_schema(conn: sqlite3.Connection) -> None:
    """Create the queue tables (and add columns a unit's older agent.db lacks); idempotent."""
    conn.executescript(SCHEMA_SQL)
    for table, column, decl in MIGRATIONS:
        have = {r["name"] for r in conn.execute(f"PRAGMA table_info({table})")}
        if column not in have:
            conn.execute(f"ALTER TABLE {table} ADD COLUMN {column} {decl}")
