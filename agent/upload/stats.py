"""What the upload queue holds, for the `upload` status row and the `cctv-agent uploads` command.

Read-only figures from UploadQueue's reporting queries (the SQL stays in queue.py); safe from any process.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass

from agent.upload.queue import JobState, UploadQueue


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
    q = UploadQueue(c)
    by_state = q.count_by_state()
    pending_bytes, oldest = q.open_bytes_and_oldest()
    return QueueStats(
        pending=by_state.get(JobState.PENDING.value, 0),
        active=by_state.get(JobState.ACTIVE.value, 0),
        held=by_state.get(JobState.HELD.value, 0),
        failed=by_state.get(JobState.REFUSED.value, 0) + by_state.get(JobState.MISSING.value, 0),
        pending_bytes=pending_bytes,
        oldest_pending_at=oldest,
        last_success_at=q.last_done_at(),
        rejected_events=len(q.rejected_events()),
    )


def open_jobs(c: sqlite3.Connection) -> list[sqlite3.Row]:
    """Every job not done yet, oldest first, with how many parts are in."""
    return UploadQueue(c).open_jobs()


def rejected_events(c: sqlite3.Connection) -> list[sqlite3.Row]:
    return UploadQueue(c).rejected_events()
