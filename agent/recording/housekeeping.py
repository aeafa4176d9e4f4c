"""RetentionService: runs retention (agent.recording.retention) on its own thread for `cctv-agent run`.

A pass after every published segment (the recorder's on_segment wakes it) and at least once per
segment length (10-60 s), so a filling disk is caught within a segment; it also gives the event
writer a `make_room` for each clip. What counts as uploaded comes from the upload queue.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from collections.abc import Callable

from agent.clock import Clock
from agent.config import Config
from agent.db import connect, db_path
from agent.recording.index import SegmentIndex
from agent.recording.retention import Retention, marker_is_pending
from agent.state import StateStore
from agent.threads import Health, supervised
from agent.upload.queue import upload_is_pending

log = logging.getLogger(__name__)


def pending_upload(cfg: Config, conn: sqlite3.Connection) -> Callable[[str], bool]:
    """Retention's is_pending: uploaded if the marker or the queue in agent.db says so (a kill -9 can
    fall between an event's last DONE and its marker). Without the upload pipeline nothing is ever
    pending: events age out like footage (not kept past max_age_days, nor counted lost)."""
    if not cfg.upload.enabled:
        return lambda _event_id: False
    marker, queued = marker_is_pending(cfg.unit.data_dir), upload_is_pending(conn)
    return lambda event_id: marker(event_id) and queued(event_id)


def room_maker(cfg: Config, clock: Clock) -> Callable[[sqlite3.Connection], Callable[[int], bool]]:
    """For the event writer's thread: makes room on the disk for a clip before it is cut."""
    def make(conn: sqlite3.Connection) -> Callable[[int], bool]:
        retention = Retention(cfg, clock, SegmentIndex(conn), conn, StateStore(conn, clock),
                              is_pending=pending_upload(cfg, conn))
        return retention.make_room
    return make


def retention_loop(cfg: Config, clock: Clock, stop: threading.Event, interval_s: float | None = None,
                   wake: threading.Event | None = None) -> None:
    """Age and free-space retention until `stop` is set, after each `wake` and every `interval_s`."""
    if interval_s is None:
        interval_s = min(60.0, max(10.0, cfg.recording.segment_seconds))
    conn = connect(db_path(cfg.unit.data_dir))
    try:
        retention = Retention(cfg, clock, SegmentIndex(conn), conn, StateStore(conn, clock),
                              is_pending=pending_upload(cfg, conn))
        while True:
            try:
                retention.run_once()
            except (OSError, sqlite3.Error) as err:  # the next pass tries again: never a dead thread
                log.error("retention failed: %s", err)
            if _wait(stop, wake, interval_s):
                return
    finally:
        conn.close()


def _wait(stop: threading.Event, wake: threading.Event | None, timeout_s: float) -> bool:
    """Wait until `wake` or `stop` is set or the timeout passes; True if `stop` is set."""
    deadline = time.monotonic() + timeout_s
    while not stop.is_set():
        left = deadline - time.monotonic()
        if left <= 0:
            break
        if wake is None:
            stop.wait(left)
        elif wake.wait(min(left, 0.5)):
            wake.clear()
            break
    return stop.is_set()


class RetentionService:
    """start(), stop(), join(timeout), health(); `segment_done()` (any thread) asks for a pass now."""

    name = "retention"

    def __init__(self, cfg: Config, clock: Clock) -> None:
        self._cfg = cfg
        self._clock = clock
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None

    def segment_done(self) -> None:
        self._wake.set()

    def start(self) -> None:
        self._thread = supervised("retention", self._run, self._died)

    def _run(self) -> None:
        retention_loop(self._cfg, self._clock, self._stop, wake=self._wake)

    def _died(self, err: BaseException) -> None:
        self._error = err

    def stop(self) -> None:
        self._stop.set()

    def join(self, timeout: float | None = None) -> bool:
        if self._thread is not None:
            self._thread.join(timeout)
        return self._thread is None or not self._thread.is_alive()

    def health(self) -> Health:
        alive = self._thread is not None and self._thread.is_alive()
        return Health(alive, "running" if alive else f"stopped: {self._error or 'not running'}")
