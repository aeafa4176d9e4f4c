"""What the upload queue holds, for the `upload` status row and the `cctv-agent uploads` command.

Read-only queries over the queue tables of agent.db (see queue.py); safe from any process.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass

from agent.upload.queue import EventState, JobKind, JobState


@dataclass(frozen=True)
class QueueStats:
    pending: int
    active: int
    held: int
    failed: int
    pending_bytes: int
    oldest_pending_at: float | None
    last_success_at: float | None
    rejected_events: int


def queue_stats(c: sqlite3.Connection) -> QueueStats:
    """Counts for status and `cctv-agent uploads`."""
    by_state = dict(c.execute("SELECT state, COUNT(*) FROM upload_jobs GROUP BY state").fetchall())
    pending_bytes, oldest = c.execute(
        "SELECT COALESCE(SUM(size), 0), MIN(created_at) FROM upload_jobs WHERE state != ? AND kind != ?",
        (JobState.DONE.value, JobKind.NOTIFY.value),
    ).fetchone()
    last = c.execute("SELECT MAX(done_at) FROM upload_jobs WHERE state = ?", (JobState.DONE.value,))
    rejected = c.execute("SELECT COUNT(*) FROM upload_events WHERE state = ?", (EventState.REJECTED.value,))
    return QueueStats(
        pending=by_state.get(JobState.PENDING.value, 0),
        active=by_state.get(JobState.ACTIVE.value, 0),
        held=by_state.get(JobState.HELD.value, 0),
        failed=by_state.get(JobState.REFUSED.value, 0) + by_state.get(JobState.MISSING.value, 0),
        pending_bytes=pending_bytes,
        oldest_pending_at=oldest,
        last_success_at=last.fetchone()[0],
        rejected_events=rejected.fetchone()[0],
    )


def open_jobs(c: sqlite3.Connection) -> list[sqlite3.Row]:
    """Every job not done yet, oldest first, with how many parts are in."""
    return c.execute(
        "SELECT j.event_id, j.role, j.state, j.size, j.attempts, j.last_error, j.created_at, "
        "(SELECT COUNT(*) FROM upload_parts p WHERE p.job_id = j.id) AS parts "
        "FROM upload_jobs j WHERE j.state != ? ORDER BY j.id",
        (JobState.DONE.value,),
    ).fetchall()


def rejected_events(c: sqlite3.Connection) -> list[sqlite3.Row]:
    return c.execute(
        "SELECT event_id, error, created_at FROM upload_events WHERE state = ?",
        (EventState.REJECTED.value,),
    ).fetchall()
