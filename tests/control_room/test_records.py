"""Records that cannot be rewritten (issue 13, item 4), over real HTTP on SQLite and PostgreSQL:
a stored event refuses other content (409, audited), a stale heartbeat is history only, implausible
GPS is flagged and left off the map, impossible deployments are refused, events carry the deployment.
"""

from __future__ import annotations

from datetime import UTC, datetime

import requests
from sqlalchemy import func, select

from control_room import provision
from control_room.db import session_scope
from control_room.models import AuditLog, Deployment, Event, Site, StaleHeartbeat, Unit
from tests.control_room import bodies


def post(server, unit, kind: str, body) -> requests.Response:  # noqa: ANN001
    return requests.post(f"{server.url}/api/v1/units/{unit.unit_id}/{kind}", json=body, headers=unit.auth,
                         timeout=10)


def unit_row(engine, unit_id: str = "herts-mcu-001") -> Unit:  # noqa: ANN001
    with session_scope(engine) as s:
        return s.scalar(select(Unit).where(Unit.unit_id == unit_id))


# ---------------------------------------------------------------- events are immutable
def test_a_stored_event_cannot_be_rewritten_and_the_attempt_is_audited(live_server, factory, engine):
    unit = factory.unit()
    assert post(live_server, unit, "events", bodies.event()).json() == {"ok": True, "created": True}
    rewrite = bodies.event(start="2026-11-28T09:00:00Z", site="Somewhere else")
    rewrite["objects"]["snapshot"]["sha256"] = "f" * 64
    answer = post(live_server, unit, "events", rewrite)
    assert answer.status_code == 409, answer.text
    assert "cannot be rewritten" in answer.json()["error"]
    with session_scope(engine) as s:
        event = s.scalars(select(Event)).one()
        assert event.start == datetime(2026, 11, 28, 13, 4, 26, 123000, tzinfo=UTC)
        assert event.site == "High St north" and event.objects["snapshot"]["sha256"] == bodies.SHA
        row = s.scalars(select(AuditLog).where(AuditLog.action == "event_rewrite_refused")).one()
        assert row.item_id == event.event_id and row.username == "unit:herts-mcu-001"
        assert row.detail["fields"] == ["site", "start", "objects.snapshot"]


def test_a_retry_with_the_same_payload_is_idempotent_and_the_clip_may_be_added(live_server, factory, engine):
    unit = factory.unit()
    assert post(live_server, unit, "events", bodies.event()).json()["created"] is True
    assert post(live_server, unit, "events", bodies.event()).json() == {"ok": True, "created": False}
    assert post(live_server, unit, "events", bodies.event(state="clip_uploaded")).status_code == 200
    changed_clip = bodies.event(state="clip_uploaded")
    changed_clip["objects"]["clip"]["size"] = 1
    assert post(live_server, unit, "events", changed_clip).status_code == 409
    with session_scope(engine) as s:
        event = s.scalars(select(Event)).one()
        assert event.objects["clip"]["size"] == 2_500_000
        assert s.scalars(select(AuditLog.action)).all() == ["event_rewrite_refused"]


# ---------------------------------------------------------------- heartbeats: history, not state
def test_a_stale_heartbeat_is_kept_as_history_but_never_replaces_the_state(live_server, factory, engine):
    unit = factory.unit()
    stalled = bodies.heartbeat(seq=50, sent_at="2026-11-28T13:10:00Z",
                               camera={"state": "stalled", "restarts": 3})
    assert post(live_server, unit, "heartbeat", stalled).status_code == 200
    # an old "camera ok" in the same boot (a lower seq), and a replay from before with another boot id
    old_same_boot = bodies.heartbeat(seq=49, sent_at="2026-11-28T13:11:00Z")
    old_other_boot = bodies.heartbeat(seq=1, boot_id="0ldb00t", sent_at="2026-11-28T13:00:00Z")
    for body in (old_same_boot, old_other_boot, stalled):
        assert post(live_server, unit, "heartbeat", body).status_code == 200
    row = unit_row(engine)
    assert row.last_state["camera"]["state"] == "stalled" and row.last_seq == 50
    with session_scope(engine) as s:
        kept = s.scalars(select(StaleHeartbeat).order_by(StaleHeartbeat.id)).all()
    assert [k.seq for k in kept] == [49, 1, 50]
    assert "seq 49 is not after 50" in kept[0].reason and "before the last applied" in kept[1].reason
    assert kept[0].state["camera"]["state"] == "ok"
    # a reboot (new boot id, seq from 1) sent later is applied
    reboot = bodies.heartbeat(seq=1, boot_id="newb00t", sent_at="2026-11-28T13:12:00Z")
    assert post(live_server, unit, "heartbeat", reboot).status_code == 200
    assert unit_row(engine).last_state["camera"]["state"] == "ok"


def test_a_stale_heartbeat_still_acknowledges_instructions(live_server, factory, engine):
    from control_room import instructions

    unit = factory.unit()
    assert post(live_server, unit, "heartbeat", bodies.heartbeat(seq=10)).status_code == 200
    with session_scope(engine) as s:
        row = s.scalar(select(Unit))
        iid = instructions.queue(s, row, instructions.InstructionType.PING).instruction_id
    late = post(live_server, unit, "heartbeat", bodies.heartbeat(seq=9, acked=[iid])).json()
    assert late["instructions"] == []


# ---------------------------------------------------------------- GPS plausibility
def gps(lat: float, lon: float, time: str) -> dict:
    return {"fix": "3d", "lat": lat, "lon": lon, "time": time}


def test_implausible_gps_is_kept_flagged_and_not_used_as_the_position(live_server, factory, engine):
    unit = factory.unit()
    seq = iter(range(1, 100))

    def send(fix: dict) -> Unit:
        body = bodies.heartbeat(seq=next(seq), sent_at=fix["time"], gps=fix)
        assert post(live_server, unit, "heartbeat", body).status_code == 200
        return unit_row(engine)

    row = send(gps(51.705, -0.278, "2026-11-28T13:00:00Z"))
    assert (row.lat, row.lon, row.gps_flag) == (51.705, -0.278, None)
    row = send(gps(0.0, 0.0, "2026-11-28T13:01:00Z"))
    assert (row.lat, row.lon) == (51.705, -0.278) and "0,0" in row.gps_flag
    assert row.last_state["gps"]["lat"] == 0.0  # the fix itself is kept
    row = send(gps(48.8566, 2.3522, "2026-11-28T13:02:00Z"))  # Paris: outside the configured area
    assert (row.lat, row.lon) == (51.705, -0.278) and "outside the configured area" in row.gps_flag
    row = send(gps(53.4808, -2.2426, "2026-11-28T13:03:00Z"))  # Manchester 3 minutes later
    assert (row.lat, row.lon) == (51.705, -0.278) and "faster than a vehicle" in row.gps_flag
    row = send(gps(51.7100, -0.2780, "2026-11-28T13:04:00Z"))  # 550 m in 4 minutes: believable
    assert (row.lat, row.lon, row.gps_flag) == (51.71, -0.278, None)


def test_a_flagged_unit_is_badged_and_left_off_the_fleet_map(app, factory, engine):
    from control_room import fleet
    from tests.control_room.web_fixtures import login

    unit = factory.unit()
    factory.user("alice", "operator", "herts")
    client = app.test_client()
    body = bodies.heartbeat(gps=gps(0.0, 0.0, "2026-11-28T13:00:00Z"))
    answer = client.post(f"/api/v1/units/{unit.unit_id}/heartbeat", json=body, headers=unit.auth)
    assert answer.status_code == 200
    login(client, "alice")
    html = client.get("/fleet/live").get_data(as_text=True)
    assert "GPS reported 0,0" in html
    assert f'data-unit="{unit.unit_id}"' in html and f"<title>{unit.unit_id} (" not in html
    assert fleet.map_position(unit_row(engine)) is None


def test_the_area_and_speed_are_configurable():
    from control_room.config import Settings, SettingsError, load_settings

    assert Settings().gps_box() == (49.8, -8.7, 60.9, 1.8)
    assert Settings(gps_bbox="").gps_box() is None
    try:
        load_settings({"CONTROL_ROOM_GPS_BBOX": "north,south"})
    except SettingsError as exc:
        assert "GPS_BBOX" in str(exc) and "four numbers" in str(exc)
    else:
        raise AssertionError("a bad box was accepted")


# ---------------------------------------------------------------- deployments: possible histories only
def _deploy(s, unit_pk: int, site_id: int, start: datetime, end: datetime | None = None) -> Deployment:  # noqa: ANN001
    dep = Deployment(unit_pk=unit_pk, site_id=site_id, purpose="ASB", dpia_ref="D-1", signage_confirmed=True,
                     start=start, recovered_at=end, review_date=datetime(2027, 1, 1).date())
    s.add(dep)
    s.flush()
    return dep


def test_events_carry_the_deployment_at_event_time(live_server, factory, engine):
    unit = factory.unit()
    with session_scope(engine) as s:
        row = s.scalar(select(Unit))
        site = Site(council_id=row.council_id, name="Market Sq", lat=51.75, lon=-0.33)
        s.add(site)
        s.flush()
        early = _deploy(s, row.id, site.id, datetime(2026, 10, 1, tzinfo=UTC),
                        datetime(2026, 11, 1, tzinfo=UTC))
        late = _deploy(s, row.id, site.id, datetime(2026, 11, 20, tzinfo=UTC))
        ids = early.id, late.id
    bodies_ = [bodies.event(stamp="20261015T000000.000Z", start="2026-10-15T00:00:00Z"),
               bodies.event(stamp="20261110T000000.000Z", start="2026-11-10T00:00:00Z"),
               bodies.event()]
    for body in bodies_:
        assert post(live_server, unit, "events", body).status_code == 200
    with session_scope(engine) as s:
        got = [s.scalar(select(Event.deployment_id).where(Event.event_id == b["event_id"])) for b in bodies_]
    assert got == [ids[0], None, ids[1]]


def test_impossible_deployments_are_refused_even_by_a_direct_post(app, factory, engine, clock):
    from tests.control_room.web_fixtures import login

    unit = factory.unit()
    factory.unit("herts-mcu-002")
    factory.user("olga", "officer", "herts")
    with session_scope(engine) as s:
        provision.revoke_unit(s, "herts-mcu-002")
        row = s.scalar(select(Unit).where(Unit.unit_id == unit.unit_id))
        site = Site(council_id=row.council_id, name="Market Sq", lat=51.75, lon=-0.33)
        s.add(site)
        s.flush()
        site_id = site.id
        history = _deploy(s, row.id, site_id, datetime(2026, 11, 1, tzinfo=UTC),
                          datetime(2026, 11, 10, tzinfo=UTC))
    client = app.test_client()
    token = login(client, "olga")
    form = {"csrf_token": token, "site_id": str(site_id), "purpose": "ASB", "dpia_ref": "D-2",
            "review_date": "2027-01-01"}

    def deploy(unit_id: str, **extra: str):  # noqa: ANN202
        return client.post("/locations/deploy", data={**form, "unit_id": unit_id, **extra})

    revoked = deploy("herts-mcu-002")
    assert revoked.status_code == 409 and "revoked" in revoked.get_data(as_text=True)
    overlap = deploy(unit.unit_id, start="2026-11-05T10:00")  # inside the recovered deployment
    assert overlap.status_code == 409 and "would overlap" in overlap.get_data(as_text=True)
    assert deploy(unit.unit_id, start="2026-11-12T10:00").status_code == 303
    with session_scope(engine) as s:
        current = s.scalar(select(Deployment.id).where(Deployment.recovered_at.is_(None)))
    early_move = client.post(f"/locations/deployments/{current}/move",
                             data={**form, "unit_id": unit.unit_id, "start": "2026-11-11T10:00"})
    assert early_move.status_code == 409 and "after the current deployment began" in early_move.get_data(
        as_text=True)
    with session_scope(engine) as s:
        assert s.scalar(select(func.count()).select_from(Deployment)) == 2
        assert s.get(Deployment, history.id).recovered_at == datetime(2026, 11, 10, tzinfo=UTC)
