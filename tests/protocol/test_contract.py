"""The wire contract (protocol/) as the spec: every message the agent sends passes the control room's
validation (real app, real SQLite, over its HTTP handlers), instructions the control room queues parse
on the unit, the JSON Schemas and docs/protocol.md match the models, and neither side keeps a copy."""

from __future__ import annotations

import ast
import hashlib
import re
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from agent.status.heartbeat import build_payload, encode
from agent.status.instructions import parse_instructions
from agent.upload.notify import event_body
from protocol import VERSION, schema
from protocol.events import EventNote
from protocol.fields import fit
from protocol.heartbeat import Heartbeat
from protocol.outbox import EventFile, EventRecord
from protocol.times import format_utc, parse_aware, parse_utc
from tests.status.conftest import make_config as status_config
from tests.status.conftest import pi_runner  # noqa: F401 (fixture)
from tests.status.payloads import maximal_payload, pi_probes, store_with, typical_rows
from tests.upload.conftest import make_config as upload_config

ROOT = Path(__file__).resolve().parents[2]
pytest.importorskip("flask", reason="control room extras not installed")
from control_room import create_app, instructions  # noqa: E402
from control_room.config import Settings  # noqa: E402
from control_room.db import get_engine, session_scope  # noqa: E402
from tests.control_room.conftest import Factory  # noqa: E402

UNIT = "herts-mcu-001"


@pytest.fixture
def room(tmp_path: Path) -> Any:
    settings = Settings(instance_dir=tmp_path, database_url=f"sqlite:///{tmp_path / 'cr.db'}",
                        secret_key="test-secret-key-0123456789abcdef", sample_interval_s=0)
    app = create_app(settings, migrate=True)
    unit = Factory(get_engine(app)).unit(UNIT)
    client = app.test_client()
    client.unit = unit  # type: ignore[attr-defined]
    client.engine = get_engine(app)  # type: ignore[attr-defined]
    return client


def _post(room: Any, path: str, body: dict[str, Any] | bytes) -> Any:
    headers = {"Authorization": f"Bearer {room.unit.token}", "Content-Type": "application/json"}
    data = body if isinstance(body, bytes) else None
    return room.post(f"/api/v1/units/{UNIT}/{path}", data=data, json=None if data else body, headers=headers)


def test_typical_and_maximal_heartbeats_pass_the_control_rooms_validation(room: Any, tmp_path: Path,
                                                                          pi_runner: Any) -> None:  # noqa: F811
    from agent.clock import ManualClock
    clock = ManualClock()
    cfg = status_config(tmp_path / "t", unit={"id": UNIT})
    store = store_with(clock, typical_rows(clock.time()))
    typical = build_payload(cfg, store.read_all(), store.counters(), pi_probes(pi_runner), clock,
                            seq=1, reason="startup", acked=[])
    maximal = maximal_payload(tmp_path / "m") | {"unit_id": UNIT}
    for body in (typical, maximal):
        resp = _post(room, "heartbeat", encode(body))
        assert resp.status_code == 200, resp.get_json()
        Heartbeat.model_validate(body)  # the same model on both sides


def test_readings_that_do_not_fit_become_null_not_a_refused_heartbeat() -> None:
    body = fit(Heartbeat, {"schema": VERSION, "seq": 3.0, "uptime_s": float("nan"),
                           "camera": {"state": "melted", "fps": -1, "error": "x" * 500, "restarts": 2},
                           "gps": {"fix": "3d", "lat": 91.0, "lon": 0.5},
                           "acked": ["ok-1", "bad id!"]}).wire()
    assert body["seq"] == 3 and body["uptime_s"] is None
    assert body["camera"] == {"state": None, "fps": None, "last_frame_at": None, "restarts": 2,
                              "error": "x" * 200}
    assert body["gps"]["lat"] is None and body["gps"]["lon"] == 0.5
    assert body["acked"] == ["ok-1"]


def _record(data_dir: Path) -> EventRecord:
    t = time.time() - 600
    files = []
    for role, name, ctype in (("clip", "clip.mp4", "video/mp4"), ("snapshot", "snapshot.jpg", "image/jpeg")):
        blob = role.encode() * 100
        files.append(EventFile(role, f"events/{UNIT}-x/{name}", len(blob), hashlib.sha256(blob).hexdigest(),
                               ctype))
    return EventRecord(event_id=f"{UNIT}-{datetime.fromtimestamp(t, UTC):%Y%m%dT%H%M%S}.000Z", unit_id=UNIT,
                       site="High St north", start=format_utc(t), end=format_utc(t + 5),
                       clip_start=format_utc(t - 5), clip_end=format_utc(t + 10), peak_score=12.5,
                       peak_time=format_utc(t + 2), boxes=[[0.1, 0.2, 0.3, 0.4]], clock_synced=True,
                       software_version="0.1.0", created_at=format_utc(t + 11), files=files)


def test_both_event_notifications_pass_the_control_rooms_validation(room: Any, tmp_path: Path) -> None:
    cfg = upload_config(tmp_path / "data", "https://s3.example.invalid", "cctv-footage", unit=UNIT)
    record = _record(tmp_path)
    done = [SimpleNamespace(role=f.role, key=f"units/{UNIT}/{f.path}", size=f.size, sha256=f.sha256)
            for f in record.files]
    for role, state in (("notify_snapshot", "snapshot_uploaded"), ("notify_clip", "clip_uploaded")):
        body = event_body(cfg, record, role, done)
        EventNote.model_validate(body)
        resp = _post(room, "events", body)
        assert resp.status_code == 200, resp.get_json()
        assert body["state"] == state


def test_instructions_the_control_room_queues_parse_on_the_unit(room: Any) -> None:
    from sqlalchemy import select

    from control_room.models import InstructionType, Unit
    start = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
    with session_scope(room.engine) as s:
        unit = s.scalar(select(Unit).where(Unit.unit_id == UNIT))
        instructions.request_upload_range(s, unit, start, start + timedelta(minutes=5))
        instructions.queue(s, unit, InstructionType.PING)
        wire = instructions.deliver(s, unit)
    parsed = parse_instructions({"instructions": wire})
    assert [p.type for p in parsed] == ["upload_range", "ping"]
    assert parsed[0].start == start and parsed[0].end == start + timedelta(minutes=5)


def test_outbox_record_round_trips_and_a_corrupt_one_names_the_field(tmp_path: Path) -> None:
    record = _record(tmp_path)
    assert EventRecord.from_json(record.to_json()) == record
    with pytest.raises(ValueError, match="files.0.path"):
        EventRecord.from_json(record.to_json().replace(b'"events/', b'"/etc/'))
    with pytest.raises(ValueError, match="start"):
        EventRecord.from_json(record.to_json().replace(record.start.encode(), b"yesterday"))


def test_time_forms() -> None:
    assert format_utc(0) == "1970-01-01T00:00:00.000Z"
    assert parse_utc("2026-11-28T13:04:26.123Z") == datetime(2026, 11, 28, 13, 4, 26, 123000, tzinfo=UTC)
    assert parse_aware("2026-11-28T14:04:26+01:00") == datetime(2026, 11, 28, 13, 4, 26, tzinfo=UTC)
    for bad in ("2026-11-28T13:04:26", "9999-01-01T00:00:00Z", "tomorrow"):
        with pytest.raises(ValueError):
            parse_utc(bad)
    with pytest.raises(ValueError, match="no zone"):
        parse_aware("2026-11-28T13:04:26")


def test_json_schemas_and_protocol_doc_match_the_models() -> None:
    assert schema.main(["--check"]) == 0, "docs/protocol/*.schema.json are stale: python -m protocol.schema"
    doc = (ROOT / "docs" / "protocol.md").read_text()
    assert re.search(rf"Protocol version: \*\*{VERSION}\*\*", doc), "docs/protocol.md must state the version"
    for name in schema.schemas():
        assert f"protocol/{name}" in doc, f"docs/protocol.md does not link {name}"


def _imports(folder: Path) -> set[str]:
    found = set()
    for path in folder.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                found.add(node.module.split(".")[0])
            elif isinstance(node, ast.Import):
                found.update(a.name.split(".")[0] for a in node.names)
    return found


def test_each_side_imports_the_protocol_and_the_control_room_nothing_of_the_agent() -> None:
    assert "agent" not in _imports(ROOT / "control_room")
    assert not {"agent", "control_room", "provisioning"} & _imports(ROOT / "protocol")
    assert "protocol" in _imports(ROOT / "control_room") and "protocol" in _imports(ROOT / "agent")


def test_no_hand_written_utc_parsing_left() -> None:
    pattern = re.compile(r"fromisoformat\([^)]*replace\(\s*[\"']Z")
    offenders = [str(p.relative_to(ROOT)) for folder in ("agent", "control_room", "provisioning", "protocol")
                 for p in (ROOT / folder).rglob("*.py")
                 if pattern.search(p.read_text()) and p != ROOT / "protocol" / "times.py"]
    assert offenders == []
