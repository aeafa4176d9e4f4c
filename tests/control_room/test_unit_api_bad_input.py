"""Bad input to the unit API over real HTTP, SQLite and PostgreSQL: each gets one clear 4xx,
nothing is stored, and the service keeps answering.
"""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest
import requests
from sqlalchemy import func, select

from control_room.db import session_scope
from control_room.models import Event, HeartbeatSample, Instruction, Unit
from control_room.provision import revoke_unit
from tests.control_room import bodies

UNIT = "herts-mcu-001"
HB = f"/api/v1/units/{UNIT}/heartbeat"
EV = f"/api/v1/units/{UNIT}/events"


def snapshot(engine) -> dict[str, Any]:
    """Everything a refused request must leave untouched."""
    with session_scope(engine) as s:
        unit = s.scalar(select(Unit).where(Unit.unit_id == UNIT))
        return {
            "last_seen_at": unit.last_seen_at, "last_state": unit.last_state,
            "samples": s.scalar(select(func.count()).select_from(HeartbeatSample)),
            "events": s.scalar(select(func.count()).select_from(Event)),
            "instructions": s.scalar(select(func.count()).select_from(Instruction)),
            "units": s.scalar(select(func.count()).select_from(Unit)),
        }


@pytest.fixture
def fleet(factory):
    return {"unit": factory.unit(UNIT), "other": factory.unit("herts-mcu-002"),
            "elsewhere": factory.unit("beds-mcu-001", council="beds")}


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


GOOD = bodies.heartbeat(UNIT)
# (case, path, header kind, raw body, status, error text)
CASES = [
    ("no token", HB, None, json.dumps(GOOD), 401, "missing or malformed bearer token"),
    ("basic auth", HB, "basic", json.dumps(GOOD), 401, "missing or malformed bearer token"),
    ("wrong token", HB, "wrong", json.dumps(GOOD), 401, "unknown or wrong token"),
    ("another unit's token", HB, "other", json.dumps(GOOD), 403, "token belongs to another unit"),
    ("another council's token", HB, "elsewhere", json.dumps(GOOD), 403, "token belongs to another unit"),
    ("unknown unit, valid token", "/api/v1/units/herts-mcu-999/heartbeat", "own", json.dumps(GOOD), 403,
     "token belongs to another unit"),
    ("unknown unit, wrong token", "/api/v1/units/herts-mcu-999/heartbeat", "wrong", json.dumps(GOOD), 401,
     "unknown or wrong token"),
    ("SQL in the unit path", "/api/v1/units/x'%20OR%20'1'='1/heartbeat", "own", json.dumps(GOOD), 403,
     "token belongs to another unit"),
    ("malformed JSON", HB, "own", '{"schema": 1,', 400, "body is not valid JSON"),
    ("JSON list", HB, "own", "[1, 2]", 400, "body must be a JSON object"),
    ("no schema", HB, "own", json.dumps({"seq": 1}), 400, "schema: Field required"),
    ("future schema", HB, "own", json.dumps({**GOOD, "schema": 2}), 400,
     "schema: unsupported schema version 2"),
    ("seq not a number", HB, "own", json.dumps({**GOOD, "seq": "many"}), 400, "seq: "),
    ("negative seq", HB, "own", json.dumps({**GOOD, "seq": -1}), 400, "seq: "),
    ("local time", HB, "own", json.dumps({**GOOD, "sent_at": "2026-11-28T13:04:26+01:00"}), 400,
     "sent_at: must be an RFC 3339 UTC time ending in Z"),
    ("impossible date", HB, "own", json.dumps({**GOOD, "sent_at": "2026-02-30T00:00:00Z"}), 400, "sent_at"),
    ("latitude 200", HB, "own", json.dumps({**GOOD, "gps": {"fix": "3d", "lat": 200, "lon": 0}}), 400,
     "gps.lat"),
    ("unknown camera state", HB, "own", json.dumps({**GOOD, "camera": {"state": "exploded"}}), 400,
     "camera.state"),
    ("control characters", HB, "own", json.dumps({**GOOD, "camera": {"error": "a\x00b\x1b[2J"}}), 400,
     "camera.error"),
    ("right-to-left override", HB, "own", json.dumps({**GOOD, "software_version": "1.0\u202egnp.exe"}), 400,
     "software_version"),
    ("C1 control character", HB, "own", json.dumps({**GOOD, "modem": {"operator": "EE\u009b2J"}}), 400,
     "modem.operator"),
    ("body names another unit", HB, "own", json.dumps({**GOOD, "unit_id": "herts-mcu-002"}), 400,
     "unit_id in the body does not match the path"),
    ("too many acks", HB, "own", json.dumps({**GOOD, "acked": ["a"] * 101}), 400, "acked"),
    ("oversized", HB, "own", json.dumps({**GOOD, "pad": "x" * 20_000}), 413, "body too large"),
    ("deeply nested JSON", HB, "own", '{"schema": 1, "x": ' + "[" * 3000 + "]" * 3000 + "}", 400,
     "body is nested too deeply"),
    ("GPS time in year 1", HB, "own",
     json.dumps({**GOOD, "gps": {**GOOD["gps"], "time": "0001-01-01T00:00:00Z"}}), 400,
     "gps.time: must be between 1970 and 2100"),
    ("not JSON content type", HB, "own-text", json.dumps(GOOD), 415, "Content-Type must be application/json"),
]


def _headers(kind: str | None, fleet) -> dict[str, str]:
    tokens = {"own": fleet["unit"].token, "own-text": fleet["unit"].token, "other": fleet["other"].token,
              "elsewhere": fleet["elsewhere"].token, "wrong": "x" * 43}
    headers = {"Content-Type": "text/plain" if kind == "own-text" else "application/json"}
    if kind == "basic":
        headers["Authorization"] = "Basic YWxpY2U6c2VjcmV0"
    elif kind is not None:
        headers.update(bearer(tokens[kind]))
    return headers


@pytest.mark.parametrize("case,path,kind,raw,status,message", CASES, ids=[c[0] for c in CASES])
def test_refused_heartbeat(live_server, engine, fleet, case, path, kind, raw, status, message):
    before = snapshot(engine)
    r = requests.post(live_server.url + path, data=raw.encode(), headers=_headers(kind, fleet), timeout=10)
    assert r.status_code == status, r.text
    assert message in r.json()["error"]
    assert snapshot(engine) == before
    ok = requests.post(live_server.url + HB, json=GOOD, headers=fleet["unit"].auth, timeout=10)
    assert ok.status_code == 200  # still serving


def test_oversized_chunked_body_without_length_is_refused(live_server, engine, fleet):
    before = snapshot(engine)

    def chunks():
        for _ in range(40):
            yield b" " * 1024

    headers = {**fleet["unit"].auth, "Content-Type": "application/json"}
    r = requests.post(live_server.url + HB, data=chunks(), headers=headers, timeout=10)
    assert r.status_code == 413
    assert snapshot(engine) == before


def test_revoked_unit_gets_401_revoked_and_nothing_is_stored(live_server, engine, fleet):
    with session_scope(engine) as s:
        revoke_unit(s, UNIT)
    before = snapshot(engine)
    for path, body in ((HB, GOOD), (EV, bodies.event(UNIT))):
        r = requests.post(live_server.url + path, json=body, headers=fleet["unit"].auth, timeout=10)
        assert (r.status_code, r.json()) == (401, {"error": "revoked"})
    assert snapshot(engine) == before


GOOD_EVENT = bodies.event(UNIT)
EVENT_CASES = [
    ("HTML in site", {"site": "<script>alert(1)</script>"}, "site '<script>"),
    ("SQL in site", {"site": "x'; DROP TABLE events;--"}, "site "),
    ("path in event id", {"event_id": "../../etc/passwd"}, "event_id"),
    ("quote in event id", {"event_id": "e' OR 1=1--"}, "event_id"),
    ("bad bucket", {"bucket": "Bad_Bucket!"}, "bucket"),
    ("missing start", {"start": None}, "start"),
    ("box outside the frame", {"boxes": [[0.5, 0.5, 1.5, 0.1]]}, "boxes"),
    ("bad hash", {"objects": {"snapshot": {"key": GOOD_EVENT["objects"]["snapshot"]["key"], "size": 1,
                                           "sha256": "abc"}}}, "objects.snapshot.sha256"),
    ("another unit's key", {"objects": {"snapshot": {"key": "units/herts-mcu-002/x/snapshot.jpg", "size": 1,
                                                     "sha256": bodies.SHA}}}, "objects.snapshot.key"),
    ("dot-dot key", {"objects": {"snapshot": {"key": f"units/{UNIT}/../herts-mcu-002/s.jpg", "size": 1,
                                              "sha256": bodies.SHA}}}, "objects.snapshot.key"),
    ("clip state without clip", {"state": "clip_uploaded"}, "objects.clip is required"),
    ("unknown state", {"state": "deleted"}, "state"),
    ("start in year 9999", {"start": "9999-12-31T23:59:59Z"}, "start: must be between 1970 and 2100"),
    ("end in year 1", {"end": "0001-01-01T00:00:00Z"}, "end: must be between 1970 and 2100"),
]


@pytest.mark.parametrize("case,changes,message", EVENT_CASES, ids=[c[0] for c in EVENT_CASES])
def test_refused_event(live_server, engine, fleet, case, changes, message):
    before = snapshot(engine)
    r = requests.post(live_server.url + EV, json={**GOOD_EVENT, **changes}, headers=fleet["unit"].auth,
                      timeout=10)
    assert r.status_code == 400, r.text
    assert message in r.json()["error"]
    assert snapshot(engine) == before


def test_event_id_of_another_unit_is_a_conflict(live_server, engine, fleet):
    other = fleet["other"]
    theirs = bodies.event(other.unit_id)
    assert requests.post(f"{live_server.url}/api/v1/units/{other.unit_id}/events", json=theirs,
                         headers=other.auth, timeout=10).status_code == 200
    hijack = bodies.event(UNIT, event_id=theirs["event_id"])
    before = snapshot(engine)
    r = requests.post(live_server.url + EV, json=hijack, headers=fleet["unit"].auth, timeout=10)
    assert r.status_code == 409 and "belongs to another unit" in r.json()["error"]
    assert snapshot(engine) == before
    with session_scope(engine) as s:
        stored = s.scalar(select(Event).where(Event.event_id == theirs["event_id"]))
        assert stored.objects["snapshot"]["key"].startswith(f"units/{other.unit_id}/")


def test_unknown_paths_and_methods_answer_json(live_server, fleet):
    r = requests.get(live_server.url + HB, headers=fleet["unit"].auth, timeout=10)
    assert r.status_code == 405 and r.json() == {"error": "method not allowed"}
    r = requests.post(live_server.url + "/api/v1/units", json={}, timeout=10)
    assert r.status_code == 404 and r.json() == {"error": "not found"}


def test_a_flood_of_garbage_does_not_break_the_service(live_server, engine, fleet):
    before = snapshot(engine)
    junk = [b"", b"\xff\xfe\x00", b"{" * 5000, b'{"schema": 1e999}', b'{"schema": true}', b"null",
            json.dumps({"schema": 1, "disk": {"free_bytes": 10**30}}).encode(),
            json.dumps({"schema": 1, "modem": "EE"}).encode()]
    with requests.Session() as http:
        for raw in junk * 5:
            r = http.post(live_server.url + HB, data=raw, timeout=10,
                          headers={**fleet["unit"].auth, "Content-Type": "application/json"})
            assert r.status_code == 400, (raw[:40], r.status_code, r.text)
    assert snapshot(engine) == before
    assert requests.post(live_server.url + HB, json=GOOD, headers=fleet["unit"].auth, timeout=10).ok


def test_tokens_never_reach_the_log(live_server, fleet, caplog):
    caplog.set_level(logging.DEBUG)
    secret = "s3cret-token-that-must-not-be-logged-000000"
    for token in (secret, fleet["other"].token):
        r = requests.post(live_server.url + HB, json=GOOD, headers=bearer(token), timeout=10)
        assert r.status_code in (401, 403)
    assert "refused POST" in caplog.text  # refusals are logged...
    assert secret not in caplog.text and fleet["other"].token not in caplog.text  # ...without the token


def test_database_unreachable_is_503_retry_later(tmp_path, clock):
    from control_room import create_app
    from control_room.config import Settings
    from tests.control_room.conftest import SECRET, LiveServer, serve_in_thread
    from tests.control_room.pg import free_port

    nowhere = f"postgresql+psycopg://postgres@127.0.0.1:{free_port()}/cctv"  # nothing listens there
    app = create_app(Settings(instance_dir=tmp_path, database_url=nowhere, secret_key=SECRET), clock=clock)
    thread = serve_in_thread(app)
    try:
        live = LiveServer(f"http://127.0.0.1:{thread.port}", app)
        r = requests.post(live.url + HB, json=GOOD, headers=bearer("x" * 43), timeout=30)
        assert r.status_code == 503 and r.headers["Retry-After"] == "5"
        assert r.json() == {"error": "database unavailable, retry later"}
        assert requests.get(live.url + "/api/v1/health", timeout=30).status_code == 503
    finally:
        thread.stop()
