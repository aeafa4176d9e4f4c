"""The unit API under load (issue 13, item 3): its own process (`serve --unit-api-only`), SQLite
writers of one process queued on the writer turn instead of SQLite's sleeping busy handler, and
log-in checks that hold no write lock. Real SQLite files, real HTTP through waitress.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from flask import Flask
from sqlalchemy import select, text

from agent.clock import ManualClock
from control_room import create_app, instructions, migrate
from control_room.config import Settings
from control_room.db import begin_read_only, get_engine, make_engine, session_scope, writer_turn_taken
from control_room.models import InstructionType, Unit
from tests.control_room import bodies
from tests.control_room.conftest import SECRET, Factory, serve_in_thread


def _settings(tmp_path: Path) -> Settings:
    return Settings(instance_dir=tmp_path, database_url=f"sqlite:///{tmp_path / 'cr.db'}", secret_key=SECRET,
                    heartbeat_interval_s=60, sample_interval_s=0)


@pytest.fixture
def unit_api(tmp_path: Path, clock: ManualClock) -> Iterator[Flask]:
    app = create_app(_settings(tmp_path), migrate=True, clock=clock, pages=False)
    yield app
    get_engine(app).dispose()


def test_the_unit_api_alone_serves_units_and_no_pages(unit_api: Flask) -> None:
    unit = Factory(get_engine(unit_api)).unit()
    with session_scope(get_engine(unit_api)) as s:
        row = s.scalar(select(Unit).where(Unit.unit_id == unit.unit_id))
        instructions.queue(s, row, InstructionType.PING)
    client = unit_api.test_client()
    path = f"/api/v1/units/{unit.unit_id}/heartbeat"
    answer = client.post(path, json=bodies.heartbeat(), headers=unit.auth)
    assert answer.status_code == 200, answer.get_json()
    assert [i["type"] for i in answer.get_json()["instructions"]] == ["ping"]
    assert client.get("/api/v1/health").status_code == 200
    for page in ("/login", "/", "/static/control_room.css"):
        assert client.get(page).status_code == 404, page
    assert client.post("/login", data={"username": "a", "password": "b"}).status_code == 404
    assert "Set-Cookie" not in answer.headers


def test_concurrent_heartbeats_all_land_in_order_on_one_sqlite_file(unit_api: Flask) -> None:
    factory = Factory(get_engine(unit_api))
    units = [factory.unit(f"herts-mcu-{i:03d}") for i in range(6)]
    server = serve_in_thread(unit_api)  # 4 waitress threads, 6 clients: writers meet at the turn
    statuses: list[int] = []
    lock = threading.Lock()

    def send(unit) -> None:  # noqa: ANN001
        with requests.Session() as http:
            for seq in range(1, 21):
                body = bodies.heartbeat(unit.unit_id, seq=seq, boot_id="b1",
                                        sent_at=f"2026-11-28T13:00:{seq:02d}Z")
                answer = http.post(f"http://127.0.0.1:{server.port}/api/v1/units/{unit.unit_id}/heartbeat",
                                   json=body, headers=unit.auth, timeout=30)
                with lock:
                    statuses.append(answer.status_code)

    try:
        threads = [threading.Thread(target=send, args=(u,)) for u in units]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=120)
    finally:
        server.stop()
    assert statuses == [200] * 120
    with session_scope(get_engine(unit_api)) as s:
        assert {u.unit_id: u.last_seq for u in s.scalars(select(Unit))} == {u.unit_id: 20 for u in units}
    assert not writer_turn_taken(get_engine(unit_api))


def test_a_read_only_transaction_holds_no_write_lock(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'cr.db'}")
    migrate.upgrade(engine)
    with session_scope(engine) as reader:
        begin_read_only(reader)
        assert reader.scalar(text("SELECT count(*) FROM councils")) == 0
        assert not writer_turn_taken(engine)
        with session_scope(engine) as writer:  # would wait busy_timeout, then fail, behind a write lock
            insert = "INSERT INTO councils (slug, name, created_at) VALUES ('a', 'A', '2026-11-28')"
            writer.execute(text(insert))
            assert writer_turn_taken(engine)
        assert not writer_turn_taken(engine)
        assert reader.scalar(text("SELECT count(*) FROM councils")) == 0  # its snapshot
        reader.rollback()
    engine.dispose()


def test_the_writer_turn_is_given_back_after_commit_rollback_and_error(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'cr.db'}")
    migrate.upgrade(engine)
    with session_scope(engine) as s:
        s.execute(text("SELECT 1"))
        assert writer_turn_taken(engine)
    assert not writer_turn_taken(engine)
    with session_scope(engine) as s:
        s.execute(text("SELECT 1"))
        s.rollback()
        assert not writer_turn_taken(engine)
        s.execute(text("SELECT 1"))  # a second transaction on the same session takes it again
        assert writer_turn_taken(engine)
    with pytest.raises(RuntimeError), session_scope(engine) as s:
        s.execute(text("SELECT 1"))
        raise RuntimeError("a view failed")
    assert not writer_turn_taken(engine)
    engine.dispose()
