"""StatusService against a real HTTP control room on 127.0.0.1: heartbeats arrive with the documented
schema; a control room that is down, answers 500s or hangs never delays the stages that record and
upload, and the latest state arrives afterwards; instructions are carried out and acknowledged."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from agent.clock import ManualClock
from agent.config import Config
from agent.db import connect, db_path
from agent.state import StateStore
from agent.status.instructions import UploadRange
from agent.status.probes import Probes
from agent.status.service import StatusService
from tests.status.conftest import FIXTURES, TOKEN, ControlRoom, RecordedRunner, make_config
from tests.status.schema import schema_problems
from tests.waiting import wait_until


class Unit:
    """The stages of a unit as StatusService sees them: rows in agent.db, written from their own thread."""

    def __init__(self, cfg: Config, clock: ManualClock) -> None:
        self.store = StateStore(connect(db_path(cfg.unit.data_dir)), clock)

    def camera(self, **fields: object) -> None:
        self.store.report("camera", **({"state": "ok", "fps": 10.0, "restarts": 0} | fields))


@pytest.fixture
def run_service(tmp_path: Path, clock: ManualClock, pi_runner: RecordedRunner) -> Iterator:
    services: list[StatusService] = []

    def start(cfg: Config, **kwargs: object) -> tuple[StatusService, Unit]:
        unit = Unit(cfg, clock)
        probes = Probes(root=FIXTURES / "pi4", run=pi_runner, gpsd=None)
        service = StatusService(cfg, clock, probes=probes, tick_s=0.02, **kwargs)
        service.start()
        services.append(service)
        return service, unit

    yield start
    for s in services:
        s.stop()
        assert s.join(timeout=10), "status threads did not stop"


def status_field(unit, name: str):
    """A field of the status service's own state row; None until the service has written the row."""
    row = unit.store.read("status")
    return None if row is None else row.state.get(name)


def test_heartbeats_arrive_with_the_documented_schema(
    tmp_path: Path, clock: ManualClock, control_room: ControlRoom, run_service, caplog
) -> None:
    caplog.set_level(logging.DEBUG)
    cfg = make_config(tmp_path, control_room.url)
    service, unit = run_service(cfg)
    unit.camera()
    assert control_room.wait_for(lambda: len(control_room.received) >= 1)
    first = control_room.received[0]
    assert first["reason"] == "startup" and first["unit_id"] == "herts-mcu-001"
    assert schema_problems(first) == []
    assert control_room.headers[0]["Authorization"] == f"Bearer {TOKEN}"
    assert control_room.headers[0]["Content-Type"] == "application/json"
    assert control_room.headers[0]["User-Agent"].startswith("cctv-agent/")

    clock.advance(cfg.status.interval_s)  # the next one is due on the unit's clock
    assert control_room.wait_for(lambda: len(control_room.received) >= 2)
    assert control_room.received[1]["reason"] == "interval"
    assert control_room.received[1]["seq"] == first["seq"] + 1

    clock.advance(10)
    unit.camera(state="stalled", error="no frame for 20 s")  # a camera fault goes out at once
    assert control_room.wait_for(lambda: len(control_room.received) >= 3)
    third = control_room.received[2]
    assert third["reason"] == "change" and third["camera"]["state"] == "stalled"
    assert len(control_room.received) == 3  # nothing else was due
    assert TOKEN not in caplog.text  # the bearer token never reaches a log


def test_motion_event_sends_at_once(tmp_path: Path, clock: ManualClock, control_room, run_service) -> None:
    cfg = make_config(tmp_path, control_room.url)
    _, unit = run_service(cfg)
    assert control_room.wait_for(lambda: len(control_room.received) >= 1)
    clock.advance(6)
    unit.store.report("motion", last_event_at=clock.time(), events_today=1)
    assert control_room.wait_for(lambda: len(control_room.received) >= 2)
    assert control_room.received[1]["reason"] == "event"
    assert control_room.received[1]["motion"]["events_today"] == 1


def hammer_stages(
    cfg: Config, clock: ManualClock, service: StatusService, stop: threading.Event
) -> list[float]:
    """Record and upload as fast as the stages would, timing each hand-over to agent.db and status."""
    unit = Unit(cfg, clock)  # the stages' own thread and connection
    latencies = []
    i = 0
    while not stop.is_set():
        t0 = time.monotonic()
        unit.camera(restarts=i)
        unit.store.report("upload", alive_at=i, pending=i, pending_bytes=i * 1000)
        service.trigger("change")
        latencies.append(time.monotonic() - t0)
        i += 1
        time.sleep(0.005)
    return latencies


@pytest.mark.parametrize("fault", ["down", "500", "hang"])
def test_faulty_control_room_never_delays_the_unit_and_latest_state_arrives(
    tmp_path: Path, clock: ManualClock, control_room: ControlRoom, run_service, fault: str
) -> None:
    cfg = make_config(tmp_path, control_room.url, status={"timeout_s": 3.0})
    if fault == "down":
        control_room.stop()
    else:
        control_room.mode = fault
    service, unit = run_service(cfg)
    stop = threading.Event()
    result: list[list[float]] = []
    worker = threading.Thread(target=lambda: result.append(hammer_stages(cfg, clock, service, stop)))
    worker.start()
    # the sender is now failing (or stuck for 3 s in a hung POST) and backing off on the unit's clock
    if fault != "down":
        assert control_room.wait_for(lambda: control_room.requests >= 1)
    time.sleep(1.0)
    clock.advance(120)
    time.sleep(0.2)
    stop.set()
    worker.join(10)
    latencies = result[0]
    assert len(latencies) >= 5
    # the stages' writes and trigger() never waited on the network: a stage blocked behind the hung
    # POST would have taken seconds
    assert max(latencies) < 1.5, max(latencies)
    assert control_room.received == []
    def failed() -> bool:
        row = unit.store.read("status")
        return row is not None and row.state["failures"] >= 1 and bool(row.state["last_error"])

    assert control_room.wait_for(failed)  # the failure is recorded for `cctv-agent status`

    # the control room comes back: the latest state arrives, not a backlog
    if fault == "down":
        control_room.start()
    control_room.mode = "ok"
    control_room.release.set()
    unit.camera(restarts=4242)
    assert control_room.wait_for(lambda: control_room.received != [], clock=clock, step=5.0, timeout=20)
    assert control_room.received[0]["camera"]["restarts"] == 4242
    assert control_room.wait_for(lambda: status_field(unit, "failures") == 0)


def test_stop_is_prompt_even_while_a_post_hangs(tmp_path: Path, clock: ManualClock, control_room) -> None:
    control_room.mode = "hang"
    cfg = make_config(tmp_path, control_room.url, status={"timeout_s": 2.0})
    service = StatusService(cfg, clock, probes=Probes(root=tmp_path, run=RecordedRunner({}), gpsd=None),
                            tick_s=0.02)
    service.start()
    assert control_room.wait_for(lambda: control_room.requests >= 1)
    t0 = time.monotonic()
    service.stop()
    assert service.join(timeout=cfg.status.timeout_s + 2)
    assert time.monotonic() - t0 < cfg.status.timeout_s + 2


def test_instructions_are_carried_out_and_acknowledged(
    tmp_path: Path, clock: ManualClock, control_room: ControlRoom, run_service, caplog
) -> None:
    handed: list[UploadRange] = []
    control_room.instructions.append([
        {"id": "r1", "type": "upload_range", "start": "2026-11-28T12:00:00Z", "end": "2026-11-28T12:05:00Z",
         "priority": "high"},
        {"id": "c1", "type": "config_version", "version": "2026-12-01.1"},
        {"id": "p1", "type": "ping"},
        {"id": "x1", "type": "self_destruct"},
        {"id": "r2", "type": "upload_range", "start": "yesterday", "end": "today"},
    ])
    cfg = make_config(tmp_path, control_room.url, status={"config_version": "2026-11-20.1"})
    _, unit = run_service(cfg, on_instruction=lambda i: handed.append(i) or True)
    assert control_room.wait_for(lambda: len(control_room.received) >= 1)
    clock.advance(cfg.status.interval_s)
    assert control_room.wait_for(lambda: len(control_room.received) >= 2)
    assert [i.id for i in handed] == ["r1"]
    assert control_room.received[1]["acked"] == ["r1", "c1", "p1"]
    assert "config version mismatch" in caplog.text and "self_destruct" in caplog.text
    assert unit.store.read("status").state["config_version_expected"] == "2026-12-01.1"
    # acknowledged once: the next heartbeat carries no ids again
    clock.advance(cfg.status.interval_s)
    assert control_room.wait_for(lambda: len(control_room.received) >= 3)
    assert control_room.received[2]["acked"] == []


def test_upload_range_without_a_pipeline_is_not_acknowledged(
    tmp_path: Path, clock: ManualClock, control_room: ControlRoom, run_service
) -> None:
    control_room.instructions.append([{"id": "r1", "type": "upload_range", "start": "2026-11-28T12:00:00Z",
                                       "end": "2026-11-28T12:05:00Z"}])
    cfg = make_config(tmp_path, control_room.url)
    run_service(cfg)
    assert control_room.wait_for(lambda: len(control_room.received) >= 1)
    clock.advance(cfg.status.interval_s)
    assert control_room.wait_for(lambda: len(control_room.received) >= 2)
    assert control_room.received[1]["acked"] == []


def test_revoked_unit_stops_until_its_token_changes(
    tmp_path: Path, clock: ManualClock, control_room: ControlRoom, run_service
) -> None:
    control_room.mode = "revoked"
    cfg = make_config(tmp_path, control_room.url)
    service, unit = run_service(cfg)
    assert control_room.wait_for(lambda: control_room.requests >= 1)
    for _ in range(5):
        clock.advance(cfg.status.interval_s)
        time.sleep(0.05)
    assert control_room.requests == 1  # no retries, no further heartbeats
    assert unit.store.read("status").state["revoked"] is True

    control_room.mode = "ok"
    control_room.token_hash = __import__("hashlib").sha256(b"new-token").hexdigest()
    service.apply_config(cfg.model_copy(update={"status": cfg.status.model_copy(
        update={"token": __import__("pydantic").SecretStr("new-token")})}))
    assert control_room.wait_for(lambda: len(control_room.received) >= 1)
    assert control_room.wait_for(lambda: status_field(unit, "revoked") is False)


def passes_done(service: StatusService) -> None:
    """Wait until the sender has decided twice more (send or stay silent) after this call: a send the
    clock (just advanced) made due would have reached the control room by then."""
    n = service.passes
    service.trigger("change")
    wait_until(lambda: service.passes >= n + 2, timeout=20, what="two more sender decisions")


def test_revocation_survives_a_restart(tmp_path: Path, clock: ManualClock, control_room, run_service) -> None:
    control_room.mode = "revoked"
    cfg = make_config(tmp_path, control_room.url)
    first, _ = run_service(cfg)
    assert control_room.wait_for(lambda: control_room.requests >= 1)
    passes_done(first)  # the refusal handled and stored
    first.stop()
    assert first.join(5)
    second, _ = run_service(cfg)  # same token, same URL: still silent
    clock.advance(cfg.status.interval_s * 3)
    passes_done(second)
    assert control_room.requests == 1


def test_disabled_or_unconfigured_status_sends_nothing(
    tmp_path: Path, clock: ManualClock, control_room: ControlRoom, run_service
) -> None:
    a, _ = run_service(make_config(tmp_path / "a", control_room.url, status={"enabled": False}))
    b, _ = run_service(make_config(tmp_path / "b", ""))
    clock.advance(600)
    passes_done(a)
    passes_done(b)
    assert control_room.requests == 0


def test_acks_and_seq_survive_a_restart(tmp_path: Path, clock: ManualClock, control_room: ControlRoom,
                                        run_service) -> None:
    """Store and forward across a crash: an instruction carried out just before the control room went
    away is acknowledged by the next agent process, and seq keeps counting."""
    control_room.instructions.append([{"id": "p1", "type": "ping"}])
    cfg = make_config(tmp_path, control_room.url)
    first, unit = run_service(cfg)
    assert control_room.wait_for(lambda: len(control_room.received) >= 1)
    assert control_room.wait_for(lambda: status_field(unit, "acked") == ["p1"])
    control_room.stop()
    first.stop()
    assert first.join(10)
    last_seq = control_room.received[-1]["seq"]

    control_room.start()  # same port: the control room is back when the agent restarts
    run_service(cfg)
    assert control_room.wait_for(lambda: len(control_room.received) >= 2)
    again = control_room.received[1]
    assert again["reason"] == "startup" and again["acked"] == ["p1"] and again["seq"] > last_seq
