"""The heartbeat's SQLite fast path (control_room.api.heartbeat_fast) stores exactly what the Flask
view stores and answers the same: one sequence of heartbeats through each, on two real SQLite files.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import text

from agent.clock import ManualClock
from control_room import create_app, instructions
from control_room.api import heartbeat_fast
from control_room.api.heartbeat_fast import FastHeartbeats
from control_room.config import Settings
from control_room.db import get_engine, session_scope, writer_turn_taken
from control_room.models import InstructionType
from control_room.provision import get_unit
from tests.control_room import bodies
from tests.control_room.conftest import SECRET, Factory
from tests.waiting import wait_until

UNIT_COLUMNS = ("unit_id", "last_seen_at", "last_seq", "last_state", "last_sample_at", "software_version",
                "lat", "lon", "position_at", "gps_flag")


def _app(tmp_path: Path, name: str, clock: ManualClock, fast: bool) -> Flask:
    settings = Settings(instance_dir=tmp_path, database_url=f"sqlite:///{tmp_path / name}", secret_key=SECRET,
                        heartbeat_interval_s=60, sample_interval_s=120)
    app = create_app(settings, migrate=True, clock=clock, pages=False)
    assert isinstance(app.wsgi_app, FastHeartbeats)
    if not fast:
        app.wsgi_app = app.wsgi_app.next_app  # type: ignore[attr-defined]
    return app


@pytest.fixture
def apps(tmp_path: Path, clock: ManualClock) -> Iterator[tuple[Flask, Flask]]:
    fast, flask_only = _app(tmp_path, "fast.db", clock, True), _app(tmp_path, "flask.db", clock, False)
    yield fast, flask_only
    for app in (fast, flask_only):
        get_engine(app).dispose()


def _rows(app: Flask) -> dict[str, list[tuple[Any, ...]]]:
    with get_engine(app).connect() as conn:
        return {
            "units": [tuple(r) for r in conn.execute(text(
                "SELECT unit_id, last_seen_at, last_seq, last_state, last_sample_at, software_version, "
                "lat, lon, position_at, gps_flag FROM units"))],
            "samples": [tuple(r) for r in conn.execute(text(
                "SELECT unit_pk, at, signal_percent, disk_free_bytes, queue_depth, cpu_temp_c "
                "FROM heartbeat_samples ORDER BY id"))],
            "stale": [tuple(r) for r in conn.execute(text(
                "SELECT unit_pk, received_at, seq, boot_id, sent_at, reason, state FROM stale_heartbeats "
                "ORDER BY id"))],
            "instructions": [tuple(r) for r in conn.execute(text(
                "SELECT instruction_id, acked_at, delivery_count, first_delivered_at FROM instructions"))],
        }


def test_fast_path_stores_and_answers_as_the_flask_view(apps: tuple[Flask, Flask],
                                                        clock: ManualClock) -> None:
    tokens = {}
    for app in apps:
        tokens[app] = Factory(get_engine(app)).unit().token
    moved = {"fix": "3d", "lat": 51.71, "lon": -0.28, "time": "2026-11-28T13:10:25Z"}
    steps: list[tuple[dict[str, Any], dict[str, str]]] = [
        (bodies.heartbeat(), {}),
        (bodies.heartbeat(seq=1235, gps=moved), {}),
        (bodies.heartbeat(seq=1200), {}),  # stale: kept as history only
        (bodies.heartbeat(seq=1236, software_version="0.2.0"), {}),
        (bodies.heartbeat(seq=1237, software_version="0.2.0", gps={"fix": "3d", "lat": 0.0, "lon": 0.0}), {}),
        (bodies.heartbeat(seq=1238), {"Authorization": "Bearer wrong-token"}),  # 401 from Flask
        (bodies.heartbeat(unit_id="herts-mcu-002", seq=1239), {}),  # 400 from Flask
        (bodies.heartbeat(seq=1240, camera={"state": "ok", "fps": "ten"}), {}),  # 400 from Flask
    ]
    answered = {app: [] for app in apps}
    for body, headers in steps:
        clock.advance(61)
        for app in apps:
            auth = {"Authorization": f"Bearer {tokens[app]}", **headers}
            r = app.test_client().post("/api/v1/units/herts-mcu-001/heartbeat", json=body, headers=auth)
            answered[app].append((r.status_code, r.get_json(), r.headers.get("WWW-Authenticate")))
            assert not writer_turn_taken(get_engine(app))
    fast, flask_only = apps
    assert answered[fast] == answered[flask_only]
    assert [a[0] for a in answered[fast]] == [200, 200, 200, 200, 200, 401, 400, 400]
    assert _rows(fast) == _rows(flask_only)
    rows = _rows(fast)
    assert len(rows["stale"]) == 1 and rows["stale"][0][2] == 1200
    assert rows["units"][0][UNIT_COLUMNS.index("gps_flag")]  # 0,0 flagged, position kept
    assert rows["units"][0][UNIT_COLUMNS.index("software_version")] == "0.2.0"
    assert len(rows["samples"]) == 2  # every 120 s at most
    assert fast.wsgi_app.answered == 5  # type: ignore[attr-defined]


def test_instructions_and_acks_go_to_the_flask_view(apps: tuple[Flask, Flask], clock: ManualClock) -> None:
    fast = apps[0]
    token = Factory(get_engine(fast)).unit().token
    with session_scope(get_engine(fast), clock) as s:
        row = instructions.queue(s, get_unit(s, "herts-mcu-001"), InstructionType.PING, {})
        instruction_id = row.instruction_id
    auth = {"Authorization": f"Bearer {token}"}
    client = fast.test_client()
    r = client.post("/api/v1/units/herts-mcu-001/heartbeat", json=bodies.heartbeat(), headers=auth)
    assert r.status_code == 200 and [i["id"] for i in r.get_json()["instructions"]] == [instruction_id]
    clock.advance(60)
    acked = bodies.heartbeat(seq=1235, acked=[instruction_id])
    r = client.post("/api/v1/units/herts-mcu-001/heartbeat", json=acked, headers=auth)
    assert r.status_code == 200 and r.get_json()["instructions"] == []
    assert _rows(fast)["instructions"][0][1] is not None  # acknowledged
    clock.advance(60)
    r = client.post("/api/v1/units/herts-mcu-001/heartbeat", json=bodies.heartbeat(seq=1236), headers=auth)
    assert r.status_code == 200
    assert fast.wsgi_app.answered == 1  # type: ignore[attr-defined]  # only the last: nothing pending


def test_a_heartbeat_waits_for_another_writer_then_stores(apps: tuple[Flask, Flask],
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """Another process's transaction holds SQLite's write lock: the heartbeat waits (polling, not in
    SQLite's busy handler), stores once it is free; if it stays taken, 503 and nothing stored."""
    fast = apps[0]
    token = Factory(get_engine(fast)).unit().token
    path = get_engine(fast).url.database
    other = sqlite3.connect(path, isolation_level=None)  # as another process would hold it
    auth = {"Authorization": f"Bearer {token}"}
    answers: list[int] = []

    def send(seq: int) -> None:
        r = fast.test_client().post("/api/v1/units/herts-mcu-001/heartbeat",
                                    json=bodies.heartbeat(seq=seq), headers=auth)
        answers.append(r.status_code)

    other.execute("BEGIN IMMEDIATE")
    sender = threading.Thread(target=send, args=(1235,))
    sender.start()
    # the sender waits for the lock, holding the turn
    wait_until(lambda: writer_turn_taken(get_engine(fast)), 30, "the sender holding the writer's turn",
               interval=0.01)
    assert answers == []
    other.execute("COMMIT")
    sender.join(timeout=30)
    assert answers == [200]
    assert _rows(fast)["units"][0][UNIT_COLUMNS.index("last_seq")] == 1235

    monkeypatch.setattr(heartbeat_fast, "BUSY_TIMEOUT_S", 0.3)
    other.execute("BEGIN IMMEDIATE")
    try:
        send(1236)
    finally:
        other.execute("ROLLBACK")
        other.close()
    assert answers == [200, 503]
    assert _rows(fast)["units"][0][UNIT_COLUMNS.index("last_seq")] == 1235
    assert fast.wsgi_app.answered == 1  # type: ignore[attr-defined]
