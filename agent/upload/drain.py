"""`cctv-agent uploads --drain`: upload everything queued with the agent stopped, then exit.

For a field engineer before recovering a unit, and for `make demo-check`: runs the same UploadService
as `run` (no camera), shows progress (bytes left), and ends when nothing is pending or in progress.
"""

from __future__ import annotations

import logging
import sqlite3
import time
from dataclasses import dataclass

from agent.clock import Clock
from agent.config import Config
from agent.db import connect, db_path
from agent.errors import InputError
from agent.events.outbox import OUTBOX_DIR
from agent.progress import Progress
from agent.upload.stats import QueueStats, queue_stats
from agent.upload.worker import RetryPolicy, UploadService

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DrainResult:
    drained: bool  # nothing pending or in progress at the end
    stats: QueueStats
    seconds: float

    def summary(self) -> str:
        st = self.stats
        left = f"{st.pending + st.active} pending ({st.pending_bytes} B)"
        return (f"{'drained' if self.drained else 'NOT drained'} in {self.seconds:.1f} s: {left}, "
                f"held by budget {st.held}, failed {st.failed}, rejected events {st.rejected_events}")


def _stats(cfg: Config) -> QueueStats:
    conn = connect(db_path(cfg.unit.data_dir))
    try:
        return queue_stats(conn)
    finally:
        conn.close()


def drain(cfg: Config, clock: Clock, timeout_s: float, progress: Progress | None = None,
          policy: RetryPolicy | None = None, poll_s: float = 0.5) -> DrainResult:
    """Run the upload service until the queue has nothing pending or active, or `timeout_s` passes.
    Jobs held by the data budget or refused are not waited for (they are reported)."""
    if not db_path(cfg.unit.data_dir).exists() and not (cfg.unit.data_dir / OUTBOX_DIR).is_dir():
        raise InputError(f"{cfg.unit.data_dir}: no agent database and no outbox (has the agent run here?)")
    service = UploadService(cfg, clock, policy)
    started = time.monotonic()
    deadline = started + timeout_s
    service.start()
    try:
        service.wait_ready(max(0.0, deadline - time.monotonic()))
        total = None
        while True:
            try:
                st = _stats(cfg)
            except sqlite3.OperationalError as err:  # busy for longer than the connect timeout
                log.warning("queue not readable yet: %s", err)
                time.sleep(poll_s)
                continue
            if total is None or st.pending_bytes > total:
                total = st.pending_bytes
            if progress is not None:
                progress.update(total - st.pending_bytes, total)
            if st.pending + st.active == 0 or time.monotonic() >= deadline:
                break
            time.sleep(poll_s)
    finally:
        service.stop()
        service.join(30)
    st = _stats(cfg)
    return DrainResult(st.pending + st.active == 0, st, time.monotonic() - started)
