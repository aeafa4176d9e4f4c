"""Durable upload queue: outbox events become jobs in agent.db (SQLite WAL); the lanes pick jobs from it.

Every change is one short transaction, so a row is either before or after a step after kill -9; job
states are Enums stored as text; ACTIVE jobs found at start-up were interrupted and go back to PENDING.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from agent.events.outbox import OUTBOX_DIR
from agent.upload.model import (
    NOT_BLOCKING,
    RETRYABLE,
    STAGE,
    EventState,
    Job,
    JobKind,
    JobState,
    Lane,
    NewJob,
    Part,
    Priority,
)
from agent.upload.schema import create_schema

__all__ = [
    "STAGE", "EventState", "Job", "JobKind", "JobState", "Lane", "NewJob", "Part", "Priority", "UploadQueue",
    "create_schema", "pending_event_ids", "upload_is_pending",
]


_JOB_COLS = (
    "j.id, j.event_id, j.kind, j.role, j.lane, j.stage, j.path, j.key, j.size, j.sha256, j.content_type, "
    "j.state, j.attempts, j.upload_id, j.part_size, e.priority, e.budget_override"
)


def _job(row: sqlite3.Row) -> Job:
    return Job(
        id=row["id"],
        event_id=row["event_id"],
        kind=JobKind(row["kind"]),
        role=row["role"],
        lane=Lane(row["lane"]),
        stage=row["stage"],
        path=row["path"],
        key=row["key"],
        size=row["size"],
        sha256=row["sha256"],
        content_type=row["content_type"],
        state=JobState(row["state"]),
        attempts=row["attempts"],
        upload_id=row["upload_id"],
        priority=row["priority"],
        budget_override=bool(row["budget_override"]),
        part_size=row["part_size"],
    )


class UploadQueue:
    """The queue tables of agent.db: the only code that runs SQL on them. One instance per thread
    (a sqlite connection is per thread); the tables exist once open() (or create_schema) ran."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    @classmethod
    def open(cls, conn: sqlite3.Connection) -> UploadQueue:
        """At start-up (service, command, retention): create the tables if needed, then the queue."""
        create_schema(conn)
        return cls(conn)

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            yield self.conn
        except BaseException:
            self.conn.execute("ROLLBACK")
            raise
        self.conn.execute("COMMIT")

    # --- intake -------------------------------------------------------------------------------
    def known_event(self, event_id: str) -> EventState | None:
        row = self.conn.execute("SELECT state FROM upload_events WHERE event_id = ?", (event_id,)).fetchone()
        return EventState(row["state"]) if row else None

    def event_states(self) -> dict[str, EventState]:
        """Every event the queue knows, with its state (intake's rescan judges records by this)."""
        rows = self.conn.execute("SELECT event_id, state FROM upload_events")
        return {r["event_id"]: EventState(r["state"]) for r in rows}

    def add_event(
        self,
        event_id: str,
        jobs: list[NewJob],
        now: float,
        meta: dict[str, str],
        priority: Priority = Priority.NORMAL,
    ) -> None:
        """Queue an event's jobs and update meta rows (manifest chain head) in one transaction.

        A HIGH priority event (a control-room request) also passes the data budget.
        """
        with self._tx() as c:
            c.execute(
                "DELETE FROM upload_events WHERE event_id = ? AND state = ?",
                (event_id, EventState.REJECTED.value),
            )
            c.execute(
                "INSERT INTO upload_events(event_id, state, created_at, priority, budget_override) "
                "VALUES (?, ?, ?, ?, ?)",
                (event_id, EventState.QUEUED.value, now, int(priority), int(priority >= Priority.HIGH)),
            )
            for j in jobs:
                c.execute(
                    "INSERT INTO upload_jobs(event_id, kind, role, lane, stage, path, key, size, sha256, "
                    "content_type, state, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        event_id,
                        j.kind.value,
                        j.role,
                        j.lane.value,
                        j.stage,
                        j.path,
                        j.key,
                        j.size,
                        j.sha256,
                        j.content_type,
                        JobState.PENDING.value,
                        now,
                    ),
                )
            for name, value in meta.items():
                c.execute(
                    "INSERT INTO upload_meta(name, value) VALUES (?, ?) "
                    "ON CONFLICT(name) DO UPDATE SET value = excluded.value",
                    (name, value),
                )

    def reject_event(self, event_id: str, error: str, now: float) -> None:
        self.conn.execute(
            "INSERT INTO upload_events(event_id, state, error, created_at) VALUES (?, ?, ?, ?) "
            "ON CONFLICT(event_id) DO UPDATE SET error = excluded.error WHERE state = ?",
            (event_id, EventState.REJECTED.value, error, now, EventState.REJECTED.value),
        )

    def meta(self, name: str) -> str | None:
        row = self.conn.execute("SELECT value FROM upload_meta WHERE name = ?", (name,)).fetchone()
        return row["value"] if row else None

    def set_meta(self, name: str, value: str) -> None:
        self.conn.execute(
            "INSERT INTO upload_meta(name, value) VALUES (?, ?) "
            "ON CONFLICT(name) DO UPDATE SET value = excluded.value",
            (name, value),
        )

    def add_to_meta(self, name: str, n: int) -> None:
        """Add n to an integer meta row (the data budget's usage counter) in one statement."""
        self.conn.execute(
            "INSERT INTO upload_meta(name, value) VALUES (?, ?) ON CONFLICT(name) DO UPDATE "
            "SET value = CAST(CAST(value AS INTEGER) + CAST(excluded.value AS INTEGER) AS TEXT)",
            (name, str(n)),
        )

    def recover(self) -> int:
        """At start-up: jobs left ACTIVE by a crash go back to PENDING, and every wait restarts."""
        with self._tx() as c:
            n = c.execute(
                "UPDATE upload_jobs SET state = ? WHERE state = ?",
                (JobState.PENDING.value, JobState.ACTIVE.value),
            ).rowcount
            c.execute("UPDATE upload_jobs SET retry_at = 0 WHERE state != ?", (JobState.DONE.value,))
        return n

    def next_job(self, lane: Lane, now: float, max_wait_s: float) -> Job | None:
        """The best eligible job of a lane: priority, then stage (snapshots before clips), then age."""
        states = ",".join(f"'{s.value}'" for s in RETRYABLE)
        blocking = ",".join(f"'{s}'" for s in NOT_BLOCKING)
        row = self.conn.execute(
            f"SELECT {_JOB_COLS} FROM upload_jobs j JOIN upload_events e USING(event_id) "  # noqa: S608
            f"WHERE j.lane = ? AND j.state IN ({states}) AND (j.retry_at <= ? OR j.retry_at > ?) "
            f"AND NOT EXISTS (SELECT 1 FROM upload_jobs b WHERE b.event_id = j.event_id "
            f"AND b.stage < j.stage AND b.state NOT IN ({blocking})) "
            "ORDER BY e.priority DESC, j.stage ASC, j.id ASC LIMIT 1",
            (lane.value, now, now + max_wait_s),
        ).fetchone()
        return _job(row) if row else None

    def next_waiting_clip(self, now: float, max_wait_s: float) -> Job | None:
        """The clip the bulk lane takes next once its event's earlier stages (snapshot, metadata) are
        through: pending, due, its upload not started yet. For readying it meanwhile."""
        row = self.conn.execute(
            f"SELECT {_JOB_COLS} FROM upload_jobs j JOIN upload_events e USING(event_id) "  # noqa: S608
            "WHERE j.lane = ? AND j.kind = ? AND j.state = ? AND j.upload_id IS NULL "
            "AND (j.retry_at <= ? OR j.retry_at > ?) "
            "ORDER BY e.priority DESC, j.stage ASC, j.id ASC LIMIT 1",
            (Lane.BULK.value, JobKind.CLIP.value, JobState.PENDING.value, now, now + max_wait_s),
        ).fetchone()
        return _job(row) if row else None

    def get(self, job_id: int) -> Job:
        row = self.conn.execute(
            f"SELECT {_JOB_COLS} FROM upload_jobs j JOIN upload_events e USING(event_id) WHERE j.id = ?",  # noqa: S608
            (job_id,),
        ).fetchone()
        return _job(row)

    def set_state(
        self,
        job_id: int,
        state: JobState,
        error: str | None = None,
        retry_at: float = 0.0,
        now: float | None = None,
    ) -> None:
        with self._tx() as c:
            c.execute(
                "UPDATE upload_jobs SET state = ?, last_error = ?, retry_at = ?, done_at = ?, "
                "attempts = attempts + ? WHERE id = ?",
                (
                    state.value,
                    error,
                    retry_at,
                    now if state is JobState.DONE else None,
                    1 if state in (JobState.REFUSED, JobState.MISSING) else 0,
                    job_id,
                ),
            )
            if state is JobState.DONE:
                c.execute("DELETE FROM upload_parts WHERE job_id = ?", (job_id,))
                c.execute(
                    "UPDATE upload_events SET state = ?, completed_at = ? WHERE event_id = "
                    "(SELECT event_id FROM upload_jobs WHERE id = ?) AND NOT EXISTS (SELECT 1 FROM "
                    "upload_jobs WHERE event_id = upload_events.event_id AND state != ?)",
                    (EventState.COMPLETE.value, now, job_id, JobState.DONE.value),
                )

    def request_event(self, event_id: str) -> bool:
        """A control-room request: the event jumps the queue and its clip passes the data budget."""
        with self._tx() as c:
            n = c.execute(
                "UPDATE upload_events SET priority = ?, budget_override = 1 WHERE event_id = ?",
                (int(Priority.HIGH), event_id),
            ).rowcount
            c.execute(
                "UPDATE upload_jobs SET state = ?, retry_at = 0 WHERE event_id = ? AND state IN (?, ?)",
                (JobState.PENDING.value, event_id, JobState.HELD.value, JobState.REFUSED.value),
            )
        return n > 0

    # --- multipart ----------------------------------------------------------------------------
    def set_upload_id(self, job_id: int, upload_id: str | None, part_size: int | None = None) -> None:
        with self._tx() as c:
            c.execute("DELETE FROM upload_parts WHERE job_id = ?", (job_id,))
            c.execute(
                "UPDATE upload_jobs SET upload_id = ?, part_size = ? WHERE id = ?",
                (upload_id, part_size, job_id),
            )

    def parts(self, job_id: int) -> dict[int, Part]:
        rows = self.conn.execute(
            "SELECT part_number, size, etag, checksum_sha256 FROM upload_parts WHERE job_id = ?", (job_id,)
        ).fetchall()
        return {
            r["part_number"]: Part(r["part_number"], r["size"], r["etag"], r["checksum_sha256"]) for r in rows
        }

    def replace_parts(self, job_id: int, parts: list[Part]) -> None:
        with self._tx() as c:
            c.execute("DELETE FROM upload_parts WHERE job_id = ?", (job_id,))
            for p in parts:
                self._insert_part(c, job_id, p)

    def add_part(self, job_id: int, part: Part) -> None:
        self._insert_part(self.conn, job_id, part)

    @staticmethod
    def _insert_part(c: sqlite3.Connection, job_id: int, p: Part) -> None:
        c.execute(
            "INSERT OR REPLACE INTO upload_parts(job_id, part_number, size, etag, checksum_sha256) "
            "VALUES (?, ?, ?, ?, ?)",
            (job_id, p.number, p.size, p.etag, p.checksum_sha256),
        )

    def add_stale(self, upload_id: str, key: str) -> None:
        self.conn.execute(
            "INSERT OR IGNORE INTO upload_stale(upload_id, key) VALUES (?, ?)", (upload_id, key)
        )

    def stale(self) -> list[tuple[str, str]]:
        rows = self.conn.execute("SELECT upload_id, key FROM upload_stale")
        return [(r["upload_id"], r["key"]) for r in rows]

    def drop_stale(self, upload_id: str) -> None:
        self.conn.execute("DELETE FROM upload_stale WHERE upload_id = ?", (upload_id,))

    # --- reading ------------------------------------------------------------------------------
    def done_jobs(self, event_id: str) -> list[Job]:
        rows = self.conn.execute(
            f"SELECT {_JOB_COLS} FROM upload_jobs j JOIN upload_events e USING(event_id) "  # noqa: S608
            "WHERE j.event_id = ? AND j.state = ? ORDER BY j.id",
            (event_id, JobState.DONE.value),
        ).fetchall()
        return [_job(r) for r in rows]

    # --- reporting (status row, `cctv-agent uploads`) -----------------------------------------------
    def count_by_state(self) -> dict[str, int]:
        rows = self.conn.execute("SELECT state, COUNT(*) AS n FROM upload_jobs GROUP BY state")
        return {r["state"]: r["n"] for r in rows}

    def open_bytes_and_oldest(self) -> tuple[int, float | None]:
        """Bytes of files not uploaded yet, and when the oldest of them was queued."""
        row = self.conn.execute(
            "SELECT COALESCE(SUM(size), 0) AS b, MIN(created_at) AS t FROM upload_jobs "
            "WHERE state != ? AND kind != ?",
            (JobState.DONE.value, JobKind.NOTIFY.value),
        ).fetchone()
        return row["b"], row["t"]

    def last_done_at(self) -> float | None:
        sql = "SELECT MAX(done_at) AS t FROM upload_jobs WHERE state = ?"
        return self.conn.execute(sql, (JobState.DONE.value,)).fetchone()["t"]

    def open_jobs(self) -> list[sqlite3.Row]:
        """Every job not done yet, oldest first, with how many parts are in."""
        return self.conn.execute(
            "SELECT j.event_id, j.role, j.state, j.size, j.attempts, j.last_error, j.created_at, "
            "(SELECT COUNT(*) FROM upload_parts p WHERE p.job_id = j.id) AS parts "
            "FROM upload_jobs j WHERE j.state != ? ORDER BY j.id",
            (JobState.DONE.value,),
        ).fetchall()

    def rejected_events(self) -> list[sqlite3.Row]:
        return self.conn.execute(
            "SELECT event_id, error, created_at FROM upload_events WHERE state = ?",
            (EventState.REJECTED.value,),
        ).fetchall()

    def held_jobs(self) -> list[tuple[int, int]]:
        """(job id, size) of every clip held by the data budget."""
        rows = self.conn.execute("SELECT id, size FROM upload_jobs WHERE state = ?", (JobState.HELD.value,))
        return [(r["id"], r["size"]) for r in rows]

    def event_ids(self, state: EventState | None = None) -> set[str]:
        """Ids of the events queued (in one state, or all)."""
        if state is None:
            return {r["event_id"] for r in self.conn.execute("SELECT event_id FROM upload_events")}
        rows = self.conn.execute("SELECT event_id FROM upload_events WHERE state = ?", (state.value,))
        return {r["event_id"] for r in rows}


def upload_is_pending(conn: sqlite3.Connection) -> Callable[[str], bool]:
    """Retention's `is_pending` for the connection of the retention thread: pending until COMPLETE."""
    queue = UploadQueue.open(conn)
    return lambda event_id: queue.known_event(event_id) is not EventState.COMPLETE


def pending_event_ids(conn: sqlite3.Connection, data_dir: Path) -> set[str]:
    """Events whose files retention must keep: queued and not complete, or published but not yet queued.

    Retention deletes an event's folder only if its id is not in this set.
    """
    queue = UploadQueue(conn)
    complete, queued = queue.event_ids(EventState.COMPLETE), queue.event_ids()
    outbox = data_dir / OUTBOX_DIR
    published = {p.stem for p in outbox.glob("*.json")} if outbox.is_dir() else set()
    return (queued | published) - complete
