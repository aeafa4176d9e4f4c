"""UploadService: intake thread (watchdog + scans + status), a link watch, and two lanes (fast: metadata,
snapshots, notifications; bulk: clips) that take jobs from the durable queue; job.py runs each job.

Threads talk only through agent.db and wake events; each thread has its own sqlite connection and
botocore S3 client. The service owns the loops; what happens to one job (retries included) is job.py's.
"""

from __future__ import annotations

import logging
import queue as pyqueue
import sqlite3
import threading
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

from agent.clock import Clock, iso_utc
from agent.config import Config
from agent.db import connect, db_path
from agent.errors import ConfigError
from agent.events.outbox import OUTBOX_DIR
from agent.http import HttpClient
from agent.memory import release_free_heap
from agent.recording.retention import add_evidential_hold, release_evidential_hold
from agent.state import StateStore
from agent.threads import Health, supervised
from agent.upload import s3
from agent.upload.budget import DataBudget, Meter, TokenBucket
from agent.upload.intake import Intake, scan_outbox, watch_outbox
from agent.upload.job import LINK_RATE_META, JobRunner, LaneCtx, RetryPolicy
from agent.upload.link import LinkRate, LinkWatch
from agent.upload.manifest import load_signing_key
from agent.upload.queue import JobState, Lane, UploadQueue, pending_event_ids
from agent.upload.ranges import queue_range
from agent.upload.stats import queue_stats

log = logging.getLogger(__name__)

MIB = 1024 * 1024

__all__ = ["RetryPolicy", "UploadService"]


class UploadService:
    """start() -> threads run; stop() asks them to finish; join(timeout) -> True when all ended."""

    def __init__(self, cfg: Config, clock: Clock, policy: RetryPolicy | None = None) -> None:
        if not cfg.upload.bucket:
            raise ConfigError("upload.bucket: not set (set it, or upload.enabled = false)")
        self.cfg = cfg
        self.clock = clock
        self.policy = policy or RetryPolicy()
        self._db = db_path(cfg.unit.data_dir)
        self._stop = threading.Event()
        self._ready = threading.Event()
        self._wake = {lane: threading.Event() for lane in Lane}
        self._inbox: pyqueue.Queue[Path] = pyqueue.Queue()
        self._bandwidth = TokenBucket(cfg.upload.bandwidth_limit_kbps * 1000 / 8, clock, self._stop)
        self._budget = DataBudget(cfg.upload.monthly_budget_mb, cfg.upload.budget_reset_day, clock)
        self._offset = s3.ClockOffset(clock)
        self._link = LinkWatch(clock, self._stop, LinkRate())
        self._threads: list[threading.Thread] = []
        self._observer: Any = None
        self._runner = JobRunner(
            cfg, clock, self.policy, self._budget, self._offset, self._stop, on_done=self._wake_all
        )

    # --- public -------------------------------------------------------------------------------
    def start(self) -> None:
        """Open the database once (tables, WAL, crash recovery) before any thread races to it."""
        conn = connect(self._db)
        try:
            queue = UploadQueue.open(conn)  # the only place the service creates its tables
            recovered = queue.recover()
            self._link.rate.observe_saved(queue.meta(LINK_RATE_META))
        finally:
            conn.close()
        if recovered:
            log.info("%d interrupted upload(s) will resume", recovered)
        bodies: list[tuple[str, Callable[[], None]]] = [
            ("upload-intake", self._intake_loop),
            ("upload-linkwatch", self._link.run),
            *((f"upload-{lane.value}", partial(self._lane_loop, lane)) for lane in Lane),
        ]
        # agent.threads.supervised, as every agent thread: a death is logged, never silent (and shows
        # in health()); inside it, _guard restarts a body that raised, after 5 s
        self._threads = [supervised(name, partial(self._guard, body)) for name, body in bodies]

    def stop(self) -> None:
        self._stop.set()
        for ev in self._wake.values():
            ev.set()
        if self._observer is not None:
            self._observer.stop()

    def join(self, timeout: float | None = None) -> bool:
        deadline = None if timeout is None else time.monotonic() + timeout
        for t in self._threads:
            t.join(None if deadline is None else max(0.0, deadline - time.monotonic()))
        if self._observer is not None:
            self._observer.join(1.0)
        done = not any(t.is_alive() for t in self._threads)
        if done and self._threads:  # the intake thread's last report can precede a lane's last job
            try:
                conn = connect(self._db)
                try:
                    self._report(UploadQueue(conn), StateStore(conn, self.clock))
                finally:
                    conn.close()
            except sqlite3.Error as err:
                log.error("could not record the upload state at stop: %s", err)
        return done

    name = "upload"

    def health(self) -> Health:  # agent.threads.Service: alive while every upload thread runs
        dead = [t.name for t in self._threads if not t.is_alive()]
        return Health(bool(self._threads) and not dead, f"{dead} not running" if dead else "running")

    def wait_ready(self, timeout: float) -> bool:
        """True once the start-up scan has queued every record already in the outbox."""
        return self._ready.wait(timeout)

    def request_event(self, event_id: str) -> bool:
        """A control-room request: the event jumps the queue and its clip passes the data budget."""
        conn = connect(self._db)
        try:
            found = UploadQueue(conn).request_event(event_id)
        finally:
            conn.close()
        self._wake_all()
        return found

    def on_instruction(self, instruction: Any) -> bool:
        """StatusService hook: `upload_range` queues the covering footage durably; `hold_range` and
        `release_hold` set or end an evidential hold in retention's table. True once done."""
        conn = connect(self._db)
        try:
            if instruction.type == "hold_range":
                until = instruction.until.timestamp() if instruction.until else None
                add_evidential_hold(conn, instruction.hold, instruction.start.timestamp(),
                                    instruction.end.timestamp(), instruction.reason, until)
                return True
            if instruction.type == "release_hold":
                release_evidential_hold(conn, instruction.hold)
                return True
            return queue_range(self.cfg, self.clock, conn, instruction.id, instruction.start, instruction.end)
        finally:
            conn.close()

    def pending_event_ids(self) -> set[str]:
        conn = connect(self._db)
        try:
            return pending_event_ids(conn, self.cfg.unit.data_dir)
        finally:
            conn.close()

    # --- threads ------------------------------------------------------------------------------
    def _guard(self, fn: Callable[[], None]) -> None:
        """Run a thread body; an unexpected error is logged and the body restarted (never a silent death)."""
        while not self._stop.is_set():
            try:
                fn()
                return
            except Exception:
                log.exception("%s crashed; restarting in 5 s", threading.current_thread().name)
                self._stop.wait(5.0)

    def _intake_loop(self) -> None:
        conn = connect(self._db)
        queue = UploadQueue(conn)
        state = StateStore(conn, self.clock)
        intake = Intake(
            self.cfg, self.clock, queue, load_signing_key(self.cfg.upload.signing_key, self.cfg.unit.data_dir)
        )
        outbox = self.cfg.unit.data_dir / OUTBOX_DIR
        if self._observer is None:
            self._observer = watch_outbox(outbox, self._inbox)
        self._take_all(intake, outbox)
        self._ready.set()
        next_status, next_scan = 0.0, time.monotonic() + self.policy.rescan_s
        while not self._stop.is_set():
            try:
                if intake.take(self._inbox.get(timeout=self.policy.status_s)):
                    self._wake_all()
            except pyqueue.Empty:
                pass
            now = time.monotonic()  # pacing of this loop is real time, whatever clock the data uses
            if now >= next_scan:  # a safety net in case inotify overflowed; corrupt records stay rejected
                self._take_all(intake, outbox, recheck_rejected=False)
                next_scan = now + self.policy.rescan_s
            if now >= next_status:
                self._release_held(queue)
                self._report(queue, state)
                next_status = now + self.policy.status_s
        self._report(queue, state)
        conn.close()

    def _take_all(self, intake: Intake, outbox: Path, recheck_rejected: bool = True) -> None:
        if intake.take_all(scan_outbox(outbox), recheck_rejected):
            self._wake_all()

    def _lane_loop(self, lane: Lane) -> None:
        conn = connect(self._db)
        queue = UploadQueue(conn)
        while not self._ready.wait(0.5):
            if self._stop.is_set():
                return
        meter = Meter(lambda n: self._budget.add(queue, n), self.clock)
        target = s3.S3Target(
            s3.make_client(self.cfg.upload, self._offset, meter),
            self.cfg.upload.bucket,
            self._bandwidth,
            meter,
            int(self.cfg.upload.part_size_mb * MIB),
            int(self.cfg.upload.multipart_threshold_mb * MIB),
            self._link,
            self.cfg.upload.timeout_s,
        )
        ctx = LaneCtx(queue, target, HttpClient(), [True])
        busy = True  # the client was just built: its start-up garbage goes at the first idle moment
        while not self._stop.is_set():
            self._wake[lane].clear()  # cleared before looking, so a wake-up during the look is kept
            job = queue.next_job(lane, self.clock.time(), self.policy.refused_max_s * 2)
            if job is None:
                if lane is Lane.BULK:  # a clip waiting for its snapshot is readied meanwhile
                    if waiting := queue.next_waiting_clip(self.clock.time(), self.policy.refused_max_s * 2):
                        self._runner.prepare(ctx, waiting)
                        if self._wake[lane].is_set():  # its snapshot went while it was readied
                            continue
                    self._abort_stale(ctx)
                if busy:  # the queue has drained: the requests' buffers are free (issue 8 memory)
                    busy = False
                    release_free_heap()
                self._wake[lane].wait(self.policy.poll_s)
                continue
            self._runner.run(ctx, job)
            busy = True
        conn.close()

    def _abort_stale(self, ctx: LaneCtx) -> None:
        try:
            s3.abort_stale(ctx.target, ctx.queue)
        except Exception as err:  # best effort: the bucket lifecycle rule is the backstop
            log.debug("aborting stale uploads failed: %s", err)

    def _wake_all(self) -> None:
        for ev in self._wake.values():
            ev.set()

    # --- status -------------------------------------------------------------------------------
    def _release_held(self, q: UploadQueue) -> None:
        for job_id, size in q.held_jobs():
            if self._budget.allows(q, size):
                q.set_state(job_id, JobState.PENDING)
                self._wake[Lane.BULK].set()

    def _report(self, q: UploadQueue, state: StateStore) -> None:
        st = queue_stats(q.conn)
        now = self.clock.time()
        state.report(
            "upload",
            alive_at=iso_utc(now),
            pending=st.pending + st.active,
            pending_bytes=st.pending_bytes,
            oldest_pending_age_s=round(now - st.oldest_pending_at, 1) if st.oldest_pending_at else None,
            failed=st.failed + st.rejected_events,
            last_success_at=iso_utc(st.last_success_at) if st.last_success_at else None,
            held_by_budget=st.held,
            used_bytes=self._budget.used(q),
            budget_bytes=self._budget.budget_bytes,
            period_start=self._budget.period(),
            clock_offset_s=round(self._offset.offset_s, 3),
            last_error=self._runner.last_error,
        )
