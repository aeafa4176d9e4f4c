"""The unit's StatusService against the real control room (control_room app behind waitress on
127.0.0.1, SQLite): heartbeats, including one with every field at its maximum, pass its strict
schema and are stored; instructions it queues reach the unit and are acknowledged; revocation stops
the unit."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from agent.clock import ManualClock
from agent.db import connect, db_path
from agent.state import StateStore
from agent.status.heartbeat import HeartbeatClient, encode
from agent.status.instructions import UploadRange
from agent.status.probes import Probes
from agent.status.service import StatusService
from tests.status.conftest import FIXTURES, RecordedRunner, make_config
from tests.status.payloads import maximal_payload
from tests.waiting import holds_within

control_room = pytest.importorskip("control_room", reason="control room extras not installed")
from control_room import create_app, instructions, provision  # noqa: E402
from control_room.config import Settings  # noqa: E402
from control_room.db import get_engine, session_scope  # noqa: E402
from control_room.models import Instruction, InstructionType, Unit  # noqa: E402
from tests.control_room.conftest import Factory, serve_in_thread  # noqa: E402


class Room:
    def __init__(self, tmp_path: Path) -> None:
        settings = Settings(instance_dir=tmp_path, database_url=f"sqlite:///{tmp_path / 'cr.db'}",
                            secret_key="test-secret-key-0123456789abcdef", heartbeat_interval_s=60,
                            sample_interval_s=0)
        self.app = create_app(settings, migrate=True)
        self.engine = get_engine(self.app)
        self.unit = Factory(self.engine).unit("herts-mcu-001")
        self.server = serve_in_thread(self.app)
        self.url = f"http://127.0.0.1:{self.server.port}"

    def last_state(self) -> dict | None:
        with session_scope(self.engine) as s:
            return s.scalar(select(Unit.last_state).where(Unit.unit_id == self.unit.unit_id))

    def queue(self) -> list[str]:
        start = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
        with session_scope(self.engine) as s:
            unit = s.scalar(select(Unit).where(Unit.unit_id == self.unit.unit_id))
            rows = [instructions.request_upload_range(s, unit, start, start + timedelta(minutes=5)),
                    instructions.queue(s, unit, InstructionType.PING)]
            return [r.instruction_id for r in rows]

    def acked(self) -> set[str]:
        with session_scope(self.engine) as s:
            return set(s.scalars(select(Instruction.instruction_id).where(Instruction.acked_at.is_not(None))))


@pytest.fixture
def room(tmp_path: Path) -> Iterator[Room]:
    r = Room(tmp_path)
    yield r
    r.server.stop()
    r.engine.dispose()


def wait_for(predicate, timeout: float = 15.0, clock: ManualClock | None = None, step: float = 0.0) -> bool:
    return holds_within(predicate, timeout, clock=clock, step=step)


def test_heartbeats_are_accepted_and_instructions_acknowledged(tmp_path: Path, room: Room,
                                                                pi_runner: RecordedRunner) -> None:
    clock = ManualClock(wall=time.time())
    cfg = make_config(tmp_path, room.url, status={"token": room.unit.token, "config_version": "v1"})
    store_dir = cfg.unit.data_dir
    store_dir.mkdir(parents=True)
    ids = room.queue()
    handed: list[UploadRange] = []
    service = StatusService(cfg, clock, probes=Probes(root=FIXTURES / "pi4", run=pi_runner, gpsd=None),
                            on_instruction=lambda i: handed.append(i) or True, tick_s=0.02)
    service.start()
    try:
        assert wait_for(lambda: room.last_state() is not None), "the control room stored nothing"
        state = room.last_state()
        assert state["unit_id"] == "herts-mcu-001" and state["system"]["undervoltage"] is True
        assert state["disk"]["retention_days"] == 31 and state["config_version"] == "v1"
        assert wait_for(lambda: len(handed) >= 1)
        assert [i.id for i in handed] == [ids[0]] and handed[0].end - handed[0].start == timedelta(minutes=5)
        assert wait_for(lambda: room.acked() == set(ids), clock=clock, step=cfg.status.interval_s)
    finally:
        service.stop()
        assert service.join(10)


def test_maximal_heartbeat_passes_the_strict_schema(tmp_path: Path, room: Room) -> None:
    cfg = make_config(tmp_path, room.url, status={"token": room.unit.token})
    payload = maximal_payload(tmp_path)
    payload["unit_id"] = room.unit.unit_id
    reply = HeartbeatClient(cfg.status, room.unit.unit_id).post(encode(payload))
    assert reply.instructions == []
    assert room.last_state()["camera"]["restarts"] == 999999


def test_revoked_unit_is_stopped(tmp_path: Path, room: Room) -> None:
    with session_scope(room.engine) as s:
        provision.revoke_unit(s, room.unit.unit_id)
    clock = ManualClock(wall=time.time())
    cfg = make_config(tmp_path, room.url, status={"token": room.unit.token})
    service = StatusService(cfg, clock, probes=Probes(root=tmp_path, run=RecordedRunner({}), gpsd=None),
                            tick_s=0.02)
    service.start()
    try:
        store = StateStore(connect(db_path(cfg.unit.data_dir)), clock)

        def revoked() -> bool:
            row = store.read("status")
            return row is not None and row.state.get("revoked") is True

        assert wait_for(revoked)
    finally:
        service.stop()
        assert service.join(10)
