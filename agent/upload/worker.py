"""UploadService: intake thread (watchdog + scans + status) and two lanes (fast: metadata, snapshots,
notifications; bulk: clips) that take jobs from the durable queue and upload them to S3.

Threads talk only through agent.db and wake events; each thread has its own sqlite connection and
boto3 client. Retries: tenacity waits out transport errors forever (stop event aside); definitive
refusals put the job in REFUSED with a slow retry time, and the lane moves on to other work.
"""

from __future__ import annotations

import logging
import queue as pyqueue
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests
import tenacity

from agent.clock import Clock, iso_utc
from agent.config import Config
from agent.db import connect, db_path
from agent.errors import AgentError, ConfigError, InputError, PermanentError, TransientError
from agent.events.outbox import OUTBOX_DIR, read_event
from agent.fsutil import atomic_write_bytes, sha256_file
from agent.recording.retention import add_evidential_hold, release_evidential_hold, uploaded_marker
from agent.state import StateStore
from agent.upload import s3
from agent.upload.budget import DataBudget, Meter, Stopped, TokenBucket
from agent.upload.intake import Intake, record_path, scan_outbox, watch_outbox
from agent.upload.link import LinkRate, LinkWatch
from agent.upload.manifest import load_signing_key
from agent.upload.notify import event_body, send_event
from agent.upload.queue import EventState, Job, JobKind, JobState, Lane, UploadQueue, pending_event_ids
from agent.upload.ranges import queue_range
from agent.upload.stats import queue_stats

log = logging.getLogger(__name__)

MIB = 1024 * 1024
LINK_RATE_META = "link_rate_bytes_s"  # the measured uplink, kept across restarts


@dataclass(frozen=True)
class RetryPolicy:
    transient_initial_s: float = 1.0
    transient_max_s: float = 30.0  # a cut link is probed at least this often
    refused_initial_s: float = 60.0
    refused_max_s: float = 3600.0
    poll_s: float = 1.0  # idle lanes look at the queue at least this often
    status_s: float = 1.0
    rescan_s: float = 60.0

    def refused_wait(self, attempts: int) -> float:
        state = tenacity.RetryCallState(None, None, (), {})
        state.attempt_number = max(1, attempts)
        wait = tenacity.wait_exponential(
            multiplier=self.refused_initial_s, max=self.refused_max_s
        ) + tenacity.wait_random(0, self.refused_initial_s / 4)
        return float(wait(state))


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
        self._last_error: str | None = None

    # --- public -------------------------------------------------------------------------------
    def start(self) -> None:
        """Open the database once (tables, WAL, crash recovery) before any thread races to it."""
        conn = connect(self._db)
        try:
            queue = UploadQueue(conn)
            recovered = queue.recover()
            self._link.rate.observe_saved(queue.meta(LINK_RATE_META))
        finally:
            conn.close()
        if recovered:
            log.info("%d interrupted upload(s) will resume", recovered)
        self._threads = [
            threading.Thread(target=self._guard, args=(self._intake_loop,), name="upload-intake"),
            threading.Thread(target=self._guard, args=(self._link.run,), name="upload-linkwatch"),
        ]
        self._threads += [
            threading.Thread(target=self._guard, args=(self._lane_loop, lane), name=f"upload-{lane.value}")
            for lane in Lane
        ]
        for t in self._threads:
            t.start()

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
        return not any(t.is_alive() for t in self._threads)

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
    def _guard(self, fn: Any, *args: Any) -> None:
        """Run a thread body; an unexpected error is logged and the body restarted (never a silent death)."""
        while not self._stop.is_set():
            try:
                fn(*args)
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
        ctx = _LaneCtx(queue, target, requests.Session(), [True])
        while not self._stop.is_set():
            self._wake[lane].clear()  # cleared before looking, so a wake-up during the look is kept
            job = queue.next_job(lane, self.clock.time(), self.policy.refused_max_s * 2)
            if job is None:
                if lane is Lane.BULK:
                    self._abort_stale(ctx)
                self._wake[lane].wait(self.policy.poll_s)
                continue
            self._run(ctx, job)
        conn.close()

    # --- one job ------------------------------------------------------------------------------
    def _run(self, ctx: _LaneCtx, job: Job) -> None:
        q = ctx.queue
        if job.kind is JobKind.CLIP and not job.budget_override and not self._budget.allows(q, job.size):
            log.warning(
                "%s: data budget reached (%d of %d bytes): clip held until next period or a request",
                job.event_id,
                self._budget.used(q),
                self._budget.budget_bytes,
            )
            q.set_state(job.id, JobState.HELD)
            return
        q.set_state(job.id, JobState.ACTIVE)
        retrying = tenacity.Retrying(
            retry=tenacity.retry_if_exception_type(TransientError),
            wait=tenacity.wait_exponential_jitter(
                multiplier=self.policy.transient_initial_s, max=self.policy.transient_max_s
            ),
            stop=tenacity.stop_never,
            sleep=self._sleep,
            reraise=True,
            before_sleep=lambda rs: self._note_transient(job, rs),
        )
        try:
            if job.kind is not JobKind.NOTIFY:
                self._check_file(job)
            how = retrying(self._attempt, ctx, job)
        except Stopped:
            q.set_state(job.id, JobState.PENDING)
        except InputError as err:
            log.error("UPLOAD FILE PROBLEM %s/%s: %s", job.event_id, job.role, err)
            self._fail(q, job, JobState.MISSING, str(err))
        except PermanentError as err:
            log.error("UPLOAD REFUSED %s/%s (retrying slowly, file kept): %s", job.event_id, job.role, err)
            self._fail(q, job, JobState.REFUSED, str(err))
        except Exception as err:  # a bug or a surprise must not leave the job ACTIVE until a restart
            log.exception("UPLOAD ERROR %s/%s (retrying slowly, file kept)", job.event_id, job.role)
            self._fail(q, job, JobState.REFUSED, f"unexpected error: {err!r}")
        else:
            q.set_state(job.id, JobState.DONE, now=self.clock.time())
            self._last_error = None
            if q.known_event(job.event_id) is EventState.COMPLETE:
                # the marker is retention's default contract (agent.recording.retention); the DB is the truth
                atomic_write_bytes(uploaded_marker(self.cfg.unit.data_dir, job.event_id), b"")
            log.info("uploaded %s/%s (%d bytes, verified by %s)", job.event_id, job.role, job.size, how)
            self._wake_all()
        finally:
            ctx.target.meter.flush()
            if (rate := self._link.rate.bytes_s) and ctx.saved_rate != rate:
                q.set_meta(LINK_RATE_META, f"{rate:.0f}")
                ctx.saved_rate = rate

    def _attempt(self, ctx: _LaneCtx, job: Job) -> str:
        if self._stop.is_set():
            raise Stopped
        job = ctx.queue.get(job.id)  # a retry must see the UploadId persisted by the attempt before
        try:
            if job.kind is JobKind.NOTIFY:
                record = read_event(record_path(self.cfg.unit.data_dir, job.event_id))
                send_event(
                    ctx.http,
                    self.cfg,
                    event_body(self.cfg, record, job.role, ctx.queue.done_jobs(job.event_id)),
                )
                return "control room 200"
            path = self.cfg.unit.data_dir / (job.path or "")
            t = ctx.target
            if job.size >= t.threshold:
                written = s3.put_multipart(t, job, path, ctx.queue, self.cfg.unit.id)
            else:
                written = s3.put_small(t, job, path, self.cfg.unit.id)
            return s3.verify(t, job, written, ctx.can_head)
        except (AgentError, Stopped):
            raise
        except Exception as err:
            if self._stop.is_set():
                raise Stopped from None
            if isinstance(err, FileNotFoundError | PermissionError):
                raise InputError(f"{err.filename}: {err.strerror}") from None
            raise s3.classify(err, self._offset) from None

    def _check_file(self, job: Job) -> None:
        path = self.cfg.unit.data_dir / (job.path or "")
        try:
            size = path.stat().st_size
            digest = sha256_file(path)
        except OSError as err:
            raise InputError(f"{path}: cannot read: {err.strerror or err}") from None
        if size != job.size or digest != job.sha256:
            raise InputError(
                f"{path}: content differs from its event record (size {size}, expected {job.size})"
            )

    def _fail(self, q: UploadQueue, job: Job, state: JobState, error: str) -> None:
        self._last_error = f"{job.event_id}/{job.role}: {error}"
        current = q.get(job.id)
        if state is JobState.MISSING and current.upload_id:  # its parts can never be completed now
            q.add_stale(current.upload_id, current.key or "")
            q.set_upload_id(job.id, None)
        q.set_state(
            job.id, state, error, retry_at=self.clock.time() + self.policy.refused_wait(job.attempts + 1)
        )

    def _note_transient(self, job: Job, rs: tenacity.RetryCallState) -> None:
        err = rs.outcome.exception() if rs.outcome else None
        self._last_error = f"{job.event_id}/{job.role}: {err}"
        wait = rs.next_action.sleep if rs.next_action else 0
        level = (
            logging.WARNING if rs.attempt_number in (1, 5) or rs.attempt_number % 20 == 0 else logging.DEBUG
        )
        log.log(
            level,
            "upload of %s/%s: %s; attempt %d, waiting %.1f s (transport errors never give up)",
            job.event_id,
            job.role,
            err,
            rs.attempt_number,
            wait,
        )

    def _sleep(self, seconds: float) -> None:
        if self._stop.wait(seconds):
            raise Stopped

    def _abort_stale(self, ctx: _LaneCtx) -> None:
        try:
            s3.abort_stale(ctx.target, ctx.queue)
        except Exception as err:  # best effort: the bucket lifecycle rule is the backstop
            log.debug("aborting stale uploads failed: %s", err)

    def _wake_all(self) -> None:
        for ev in self._wake.values():
            ev.set()

    # --- status -------------------------------------------------------------------------------
    def _release_held(self, q: UploadQueue) -> None:
        held = q.conn.execute("SELECT id, size FROM upload_jobs WHERE state = ?", (JobState.HELD.value,))
        for row in held.fetchall():
            if self._budget.allows(q, row[1]):
                q.set_state(row[0], JobState.PENDING)
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
            last_error=self._last_error,
        )


@dataclass
class _LaneCtx:
    queue: UploadQueue
    target: s3.S3Target
    http: requests.Session
    can_head: list[bool]
    saved_rate: float | None = None
