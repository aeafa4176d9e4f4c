"""The periodic outbox rescan (a safety net for missed inotify events) costs one query however many
records the outbox has accumulated, not one per record: the outbox keeps every record it ever got."""

from __future__ import annotations

import os
import time
from pathlib import Path

from agent.clock import SystemClock
from agent.db import connect, db_path
from agent.events.outbox import OUTBOX_DIR
from agent.upload.intake import Intake
from agent.upload.manifest import load_signing_key
from agent.upload.queue import EventState, UploadQueue
from agent.upload.worker import UploadService
from tests.upload.conftest import make_config, publish


def test_a_rescan_of_an_outbox_already_queued_runs_one_query(tmp_path: Path) -> None:
    data = tmp_path / "data"
    cfg = make_config(data, "http://127.0.0.1:1", "b")
    records = [publish(data, time.time() - 9000 + i * 30, os.urandom(2000)) for i in range(60)]
    (data / OUTBOX_DIR / "herts-mcu-001-broken.json").write_bytes(b"{not json")
    queue = UploadQueue.open(connect(db_path(data)))
    intake = Intake(cfg, SystemClock(), queue, load_signing_key(None, data))
    svc = UploadService(cfg, SystemClock())
    svc._take_all(intake, data / OUTBOX_DIR)  # start-up scan: all queued, the broken one rejected
    assert all(queue.known_event(r.event_id) is EventState.QUEUED for r in records)
    assert queue.known_event("herts-mcu-001-broken") is EventState.REJECTED

    statements: list[str] = []
    queue.conn.set_trace_callback(statements.append)
    svc._take_all(intake, data / OUTBOX_DIR, recheck_rejected=False)  # the periodic rescan
    queue.conn.set_trace_callback(None)
    assert len(statements) <= 2, statements[:5]
    assert queue.conn.execute("SELECT count(*) FROM upload_events").fetchone()[0] == 61
