"""The unit API over real HTTP (waitress), on SQLite and PostgreSQL: heartbeats, instructions,
event notifications, and two app processes sharing one database.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import requests
from sqlalchemy import func, select

from agent.clock import iso_utc
from control_room import create_app, instructions
from control_room.db import session_scope
from control_room.models import (
    Council,
    Deployment,
    Event,
    EventState,
    HeartbeatSample,
    Instruction,
    Site,
    StaleHeartbeat,
    Unit,
)
from tests.control_room import bodies
from tests.control_room.conftest import LiveServer, serve_in_thread


def post(server, unit, kind: str, body, **kw) -> requests.Response:
    return requests.post(f"{server.url}/api/v1/units/{unit.unit_id}/{kind}", json=body, headers=unit.auth,
                         timeout=10, **kw)


def load_unit(engine, unit_id: str = "herts-mcu-001") -> Unit:
    with session_scope(engine) as s:
        return s.scalar(select(Unit).where(Unit.unit_id == unit_id))


def unit_row(session, unit_id: str = "herts-mcu-001") -> Unit:
    return session.scalar(select(Unit).where(Unit.unit_id == unit_id))


def count(engine, model) -> int:
    with session_scope(engine) as s:
        return s.scalar(select(func.count()).select_from(model))


def test_heartbeat_stores_latest_state_and_answers_with_server_time(live_server, factory, engine, clock):
    unit = factory.unit()
    body = bodies.heartbeat(unknown_future_field={"x": 1})
    r = post(live_server, unit, "heartbeat", body)
    assert r.status_code == 200, r.text
    assert r.json() == {"ok": True, "server_time": iso_utc(clock.time()), "instructions": []}
    row = load_unit(engine)
    assert row.last_seen_at == clock.now().replace(microsecond=row.last_seen_at.microsecond)
    assert row.last_seen_at.tzinfo is not None
    assert row.software_version == "0.1.0" and row.last_seq == 1234
    assert (row.lat, row.lon) == (51.705, -0.278)
    assert row.last_state["modem"]["signal_percent"] == 70
    assert row.last_state["camera"]["state"] == "ok"
    assert "unknown_future_field" not in row.last_state
    with session_scope(engine) as s:
        sample = s.scalars(select(HeartbeatSample)).one()
    assert (sample.signal_percent, sample.disk_free_bytes, sample.queue_depth, sample.cpu_temp_c) == (
        70, 20_000_000_000, 3, 51.2)


def test_minimal_heartbeat_with_nulls_is_accepted(live_server, factory, engine):
    unit = factory.unit()
    body = {"schema": 1, "camera": None, "gps": {"fix": "none", "lat": None, "lon": None}}
    assert post(live_server, unit, "heartbeat", body).status_code == 200
    row = load_unit(engine)
    assert row.last_seen_at is not None and row.lat is None


def test_chart_samples_are_kept_at_most_every_sample_interval(settings, clock, factory):
    app = create_app(settings.model_copy(update={"sample_interval_s": 300}), migrate=True, clock=clock)
    thread = serve_in_thread(app)
    try:
        live = LiveServer(f"http://127.0.0.1:{thread.port}", app)
        unit = factory.unit()
        for seq in range(10):  # 10 heartbeats a minute apart -> samples at 0, 5 min
            assert post(live, unit, "heartbeat", bodies.heartbeat(seq=seq)).status_code == 200
            clock.advance(60)
        assert count(factory.engine, HeartbeatSample) == 2
    finally:
        thread.stop()


def test_instruction_is_delivered_until_acked(live_server, factory, engine):
    unit = factory.unit()
    other = factory.unit("herts-mcu-002")
    start = datetime(2026, 11, 28, 13, 0, tzinfo=UTC)
    with session_scope(engine) as s:
        row = instructions.request_upload_range(s, unit_row(s), start, start + timedelta(minutes=5))
        other_row = instructions.request_upload_range(s, unit_row(s, other.unit_id), start,
                                                      start + timedelta(minutes=1))
        iid, other_iid = row.instruction_id, other_row.instruction_id
    expected = {"id": iid, "type": "upload_range", "start": "2026-11-28T13:00:00.000Z",
                "end": "2026-11-28T13:05:00.000Z", "priority": "high"}
    first = post(live_server, unit, "heartbeat", bodies.heartbeat()).json()["instructions"]
    again = post(live_server, unit, "heartbeat", bodies.heartbeat()).json()["instructions"]
    assert first == again == [expected]
    with session_scope(engine) as s:  # delivery is counted, the first delivery time kept
        stored = s.get(Instruction, row.id)
        assert stored.delivery_count == 2 and stored.first_delivered_at is not None
        assert stored.first_delivered_at.tzinfo is not None
    # acking another unit's instruction id does nothing to it
    acked = post(live_server, unit, "heartbeat", bodies.heartbeat(acked=[iid, other_iid])).json()
    assert acked["instructions"] == []
    assert post(live_server, other, "heartbeat", bodies.heartbeat(other.unit_id)).json()["instructions"][0][
        "id"] == other_iid


def test_event_notifications_are_idempotent_and_never_downgrade(live_server, factory, engine):
    unit = factory.unit()
    assert post(live_server, unit, "events", bodies.event()).json() == {"ok": True, "created": True}
    assert post(live_server, unit, "events", bodies.event()).json() == {"ok": True, "created": False}
    clip = bodies.event(state="clip_uploaded")
    assert post(live_server, unit, "events", clip).json()["created"] is False
    late_snapshot = post(live_server, unit, "events", bodies.event())  # a retried first notification
    assert late_snapshot.status_code == 200
    with session_scope(engine) as s:
        event = s.scalars(select(Event)).one()
        council = s.get(Council, event.council_id)
    assert event.state == EventState.CLIP_UPLOADED
    assert set(event.objects) == {"snapshot", "clip", "manifest"}
    assert event.objects["clip"]["size"] == 2_500_000
    assert event.start == datetime(2026, 11, 28, 13, 4, 26, 123000, tzinfo=UTC)
    assert event.boxes == [[0.1, 0.2, 0.05, 0.1]] and event.site == "High St north"
    assert council.slug == "herts"


def test_event_is_linked_to_the_site_the_unit_was_deployed_at(live_server, factory, engine):
    unit = factory.unit()
    with session_scope(engine) as s:
        row = unit_row(s)
        site = Site(council_id=row.council_id, name="High St north", lat=51.705, lon=-0.278)
        s.add(site)
        s.flush()
        s.add(Deployment(unit_pk=row.id, site_id=site.id, purpose="anti-social behaviour", dpia_ref="D-1",
                         signage_confirmed=True, start=datetime(2026, 11, 1, tzinfo=UTC),
                         review_date=datetime(2026, 12, 1).date()))
        site_id = site.id
    assert post(live_server, unit, "events", bodies.event()).status_code == 200
    before = bodies.event(stamp="20261001T000000.000Z", start="2026-10-01T00:00:00Z")
    assert post(live_server, unit, "events", before).status_code == 200
    with session_scope(engine) as s:
        linked = dict(s.execute(select(Event.event_id, Event.site_id)).all())
    assert linked == {"herts-mcu-001-20261128T130426.123Z": site_id,
                      "herts-mcu-001-20261001T000000.000Z": None}


def test_many_units_at_once(live_server, factory, engine):
    units = [factory.unit(f"herts-mcu-{i:03d}") for i in range(12)]

    def send(i: int) -> int:
        u = units[i % len(units)]
        body = bodies.heartbeat(u.unit_id, seq=i)
        with requests.Session() as http:
            url = f"{live_server.url}/api/v1/units/{u.unit_id}/heartbeat"
            return http.post(url, json=body, headers=u.auth, timeout=30).status_code

    with ThreadPoolExecutor(8) as pool:
        codes = list(pool.map(send, range(96)))
    assert codes == [200] * 96
    with session_scope(engine) as s:
        seen = s.scalar(select(func.count()).select_from(Unit).where(Unit.last_seen_at.is_not(None)))
    assert seen == 12
    # sample_interval_s=0 in the fixture: one sample per applied beat; a beat overtaken by a later seq of
    # its unit (8 connections at once) is kept as history instead
    assert count(engine, HeartbeatSample) + count(engine, StaleHeartbeat) == 96


def test_two_app_processes_share_state_through_the_database(settings, clock, factory, engine):
    """Nothing that matters lives in process memory: whichever process answers, the answer is the same."""
    unit = factory.unit()
    servers = [serve_in_thread(create_app(settings, clock=clock)) for _ in range(2)]
    a, b = (LiveServer(f"http://127.0.0.1:{t.port}", None) for t in servers)
    try:
        with session_scope(engine) as s:
            iid = instructions.queue(s, unit_row(s), instructions.InstructionType.PING).instruction_id
        assert post(a, unit, "heartbeat", bodies.heartbeat()).json()["instructions"] == [
            {"id": iid, "type": "ping"}]
        assert post(b, unit, "heartbeat", bodies.heartbeat(acked=[iid])).json()["instructions"] == []
        assert post(a, unit, "heartbeat", bodies.heartbeat()).json()["instructions"] == []
        assert post(b, unit, "events", bodies.event()).json()["created"] is True
        assert post(a, unit, "events", bodies.event()).json()["created"] is False
        from control_room.provision import revoke_unit
        with session_scope(engine) as s:
            revoke_unit(s, unit.unit_id)
        for live in (a, b):
            r = post(live, unit, "heartbeat", bodies.heartbeat())
            assert (r.status_code, r.json()) == (401, {"error": "revoked"})
    finally:
        for thread in servers:
            thread.stop()


def test_same_event_from_two_connections_at_once_is_stored_once(live_server, factory, engine):
    unit = factory.unit()
    barrier = threading.Barrier(6)

    def send(_: int) -> int:
        barrier.wait(timeout=10)
        return post(live_server, unit, "events", bodies.event(stamp="20261128T140000.000Z")).status_code

    with ThreadPoolExecutor(6) as pool:
        codes = list(pool.map(send, range(6)))
    assert codes == [200] * 6
    assert count(engine, Event) == 1


def test_health_for_the_load_balancer(live_server):
    r = requests.get(f"{live_server.url}/api/v1/health", timeout=5)
    assert r.status_code == 200 and r.json()["ok"] is True


def test_ordinary_punctuation_in_a_site_label_is_accepted(live_server, factory, engine):
    unit = factory.unit()
    label = "King’s Lynn: High St (north) – by Tesco"
    assert post(live_server, unit, "events", bodies.event(site=label)).status_code == 200
    with session_scope(engine) as s:
        assert s.scalar(select(Event.site)) == label
