"""Running one upload job (worker.py's lanes pick it from the queue): budget check, upload with retries,
verification, and the job's next state in the queue (DONE, HELD, REFUSED or MISSING).

Retries: tenacity waits out transport errors in place, forever (stop aside); definitive refusals put
the job in REFUSED with a retry time from a per-job tenacity schedule, and the lane moves on.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import tenacity

from agent.backoff import waits
from agent.clock import Clock
from agent.config import Config
from agent.errors import AgentError, InputError, PermanentError, TransientError
from agent.events.outbox import read_event
from agent.fsutil import atomic_write_bytes, sha256_file
from agent.http import HttpClient
from agent.recording.retention import uploaded_marker
from agent.upload import multipart, s3
from agent.upload.budget import DataBudget, Stopped
from agent.upload.intake import record_path
from agent.upload.model import Prepared
from agent.upload.notify import event_body, send_event
from agent.upload.queue import EventState, Job, JobKind, JobState, UploadQueue

log = logging.getLogger(__name__)

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

    def refused_waits(self) -> Iterator[float]:
        """Waits after a job's 1st, 2nd, ... refusal: 60 s doubling to 1 h, plus up to 15 s jitter."""
        return waits(
            tenacity.wait_exponential(multiplier=self.refused_initial_s, max=self.refused_max_s)
            + tenacity.wait_random(0, self.refused_initial_s / 4)
        )


@dataclass
class LaneCtx:
    """What one lane thread owns: its queue connection, S3 target, HTTP session."""

    queue: UploadQueue
    target: s3.S3Target
    http: HttpClient
    can_head: list[bool]
    saved_rate: float | None = None
    prepared: Prepared | None = None  # the clip readied while its snapshot went (one at a time)
    tried: int | None = None  # the job id prepare() last tried: once only, success or not


class JobRunner:
    """run(ctx, job) takes one job from picked to its next state. Shared by the lanes (thread-safe)."""

    def __init__(
        self,
        cfg: Config,
        clock: Clock,
        policy: RetryPolicy,
        budget: DataBudget,
        offset: s3.ClockOffset,
        stop: threading.Event,
        on_done: Callable[[], None],
    ) -> None:
        self.cfg = cfg
        self.clock = clock
        self.policy = policy
        self.budget = budget
        self.offset = offset
        self.last_error: str | None = None
        self._stop = stop
        self._on_done = on_done
        self._lock = threading.Lock()
        self._refused: dict[int, Iterator[float]] = {}  # job id -> its refusal schedule (this run)

    def prepare(self, ctx: LaneCtx, job: Job) -> None:
        """Ready a clip that waits for its event's snapshot and metadata (they cross the link first):
        checked, its multipart upload created, its parts hashed, so no round trip or hashing sits
        between the snapshot and the clip's first part. Best effort, once per job: run() does the rest."""
        if ctx.tried == job.id or not self._within_budget(ctx.queue, job):
            return
        ctx.tried = job.id
        try:
            ctx.prepared = multipart.prepare(
                ctx.target, job, self.cfg.unit.data_dir / (job.path or ""), ctx.queue, self.cfg.unit.id
            )
        except Exception as err:  # the job's own run retries, classifies and reports whatever this was
            log.debug("could not ready %s/%s ahead: %s", job.event_id, job.role, err)
            ctx.prepared = None
        finally:
            ctx.target.meter.flush()

    def _within_budget(self, q: UploadQueue, job: Job) -> bool:
        return job.kind is not JobKind.CLIP or job.budget_override or self.budget.allows(q, job.size)

    def run(self, ctx: LaneCtx, job: Job) -> None:
        q = ctx.queue
        prepared = ctx.prepared if ctx.prepared and ctx.prepared.job_id == job.id else None
        if prepared is not None:
            ctx.prepared = None
        if not self._within_budget(q, job):
            log.warning(
                "%s: data budget reached (%d of %d bytes): clip held until next period or a request",
                job.event_id,
                self.budget.used(q),
                self.budget.budget_bytes,
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
                self._check_file(job, prepared)
            how = retrying(self._attempt, ctx, job, [prepared])
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
            with self._lock:
                self._refused.pop(job.id, None)
            self.last_error = None
            if q.known_event(job.event_id) is EventState.COMPLETE:
                # the marker is retention's default contract (agent.recording.retention); the DB is the truth
                atomic_write_bytes(uploaded_marker(self.cfg.unit.data_dir, job.event_id), b"")
            log.info("uploaded %s/%s (%d bytes, verified by %s)", job.event_id, job.role, job.size, how)
            self._on_done()
        finally:
            ctx.target.meter.flush()
            if (rate := ctx.target.watch.rate.bytes_s) and ctx.saved_rate != rate:
                q.set_meta(LINK_RATE_META, f"{rate:.0f}")
                ctx.saved_rate = rate

    def _attempt(self, ctx: LaneCtx, job: Job, prepared: list[Prepared | None]) -> str:
        """One try; `prepared` (a one-item list) is used by the first try only: a retry looks again."""
        if self._stop.is_set():
            raise Stopped
        job = ctx.queue.get(job.id)  # a retry must see the UploadId persisted by the attempt before
        ready, prepared[0] = prepared[0], None
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
                written = multipart.put_multipart(t, job, path, ctx.queue, self.cfg.unit.id, ready)
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
            raise s3.classify(err, self.offset) from None

    def _check_file(self, job: Job, prepared: Prepared | None = None) -> None:
        """The file still is what its record says (hashed again unless prepare() just did, unchanged)."""
        path = self.cfg.unit.data_dir / (job.path or "")
        try:
            st = path.stat()
            if prepared is not None and (st.st_size, st.st_mtime_ns) == (prepared.size, prepared.mtime_ns):
                return
            size = st.st_size
            digest = sha256_file(path)
        except OSError as err:
            raise InputError(f"{path}: cannot read: {err.strerror or err}") from None
        if size != job.size or digest != job.sha256:
            raise InputError(
                f"{path}: content differs from its event record (size {size}, expected {job.size})"
            )

    def _fail(self, q: UploadQueue, job: Job, state: JobState, error: str) -> None:
        self.last_error = f"{job.event_id}/{job.role}: {error}"
        current = q.get(job.id)
        if state is JobState.MISSING and current.upload_id:  # its parts can never be completed now
            q.add_stale(current.upload_id, current.key or "")
            q.set_upload_id(job.id, None)
        with self._lock:
            wait = next(self._refused.setdefault(job.id, self.policy.refused_waits()))
        q.set_state(job.id, state, error, retry_at=self.clock.time() + wait)

    def _note_transient(self, job: Job, rs: tenacity.RetryCallState) -> None:
        err = rs.outcome.exception() if rs.outcome else None
        self.last_error = f"{job.event_id}/{job.role}: {err}"
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
