"""Fleet, unit, events feed and locations pages (Flask test client, SQLite, the app's ManualClock).

The spec: a unit is online after a heartbeat and offline after 3 missed intervals; the unit page
charts its samples; the events feed returns only newer events; officers create sites and deploy,
move and recover units with the Surveillance Camera Code fields, each change audited; overdue
reviews and units far from their site are flagged; names are escaped wherever they are shown.
"""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from sqlalchemy import select

from control_room.db import session_scope
from control_room.models import AuditLog, Deployment, Site, Unit
from tests.control_room.web_fixtures import csrf_from, event_body, heartbeat_body, login


@pytest.fixture
def database_url(sqlite_url: str) -> str:
    return sqlite_url


@pytest.fixture
def unit(factory):  # noqa: ANN001, ANN201
    factory.user("alice", "operator", "herts")
    factory.user("olga", "officer", "herts")
    return factory.unit("herts-mcu-001", "herts")


def beat(app, unit, seq: int = 1, **parts) -> None:  # noqa: ANN001
    answer = app.test_client().post(
        f"/api/v1/units/{unit.unit_id}/heartbeat",
        json=heartbeat_body(unit.unit_id, seq, **parts),
        headers=unit.auth,
    )
    assert answer.status_code == 200, answer.get_data(as_text=True)


def row_of(html: str, unit_id: str) -> str:
    match = re.search(
        rf'<tr id="unit-\d+" data-unit="{unit_id}" data-online="(yes|no)">(.*?)</tr>', html, re.S
    )
    assert match, f"no row for {unit_id}"
    return match.group(1) + match.group(2)


def test_unit_turns_online_then_offline_after_three_intervals(app, unit, clock) -> None:  # noqa: ANN001
    alice = app.test_client()
    login(alice, "alice")
    assert row_of(alice.get("/fleet/live").get_data(as_text=True), unit.unit_id).startswith("no")
    beat(app, unit)
    row = row_of(alice.get("/fleet/live").get_data(as_text=True), unit.unit_id)
    assert row.startswith("yes") and "70% lte EE" in row and "recording" in row
    clock.advance(179)
    assert row_of(alice.get("/fleet/live").get_data(as_text=True), unit.unit_id).startswith("yes")
    clock.advance(2)
    row = row_of(alice.get("/fleet/live").get_data(as_text=True), unit.unit_id)
    assert row.startswith("no") and 'data-badge="offline"' in row


def test_fleet_shows_what_needs_attention(app, unit) -> None:  # noqa: ANN001
    beat(
        app,
        unit,
        camera={"state": "stalled", "fps": 0.0},
        clock={"synced": False},
        uploads={"pending": 40, "pending_bytes": 10**8, "oldest_pending_age_s": 7200, "failed": 0},
    )
    alice = app.test_client()
    login(alice, "alice")
    row = row_of(alice.get("/").get_data(as_text=True), unit.unit_id)
    for badge in ("camera", "clock", "backlog"):
        assert f'data-badge="{badge}"' in row
    assert "stalled" in row and "not synced" in row


def test_unit_page_charts_the_samples(app, unit, clock) -> None:  # noqa: ANN001
    for seq, signal in enumerate((40, 55, 70), start=1):
        beat(app, unit, seq, modem={"signal_percent": signal, "technology": "lte"})
        clock.advance(60)
    alice = app.test_client()
    login(alice, "alice")
    html = alice.get(f"/units/{unit.unit_id}").get_data(as_text=True)
    assert html.count("<polyline") == 4  # signal, disk free, queue, temperature
    assert "latest 70 %" in html and "3 samples" in html


def test_events_feed_returns_only_newer_events(app, unit) -> None:  # noqa: ANN001
    alice = app.test_client()
    login(alice, "alice")
    page = alice.get("/events").get_data(as_text=True)
    latest = int(re.search(r'data-latest-id="(\d+)"', page).group(1))
    quiet = alice.get(f"/events/feed?after={latest}").get_json()
    assert (quiet["count"], quiet["html"], quiet["latest_id"], quiet["changed"]) == (0, "", latest, {})
    body = event_body(unit.unit_id, "20261118T101500.000Z", {}, state="snapshot_uploaded")
    assert (
        app.test_client()
        .post(f"/api/v1/units/{unit.unit_id}/events", json=body, headers=unit.auth)
        .status_code
        == 200
    )
    feed = alice.get(f"/events/feed?after={latest}").get_json()
    assert feed["count"] == 1 and feed["latest_id"] > latest and body["event_id"] in feed["html"]
    assert alice.get(f"/events/feed?after={feed['latest_id']}").get_json()["count"] == 0


def officer(app):  # noqa: ANN001, ANN201
    client = app.test_client()
    return client, login(client, "olga")


def create_site(client, token: str, name: str = "High St north", lat: str = "51.7050", lon: str = "-0.2780"):  # noqa: ANN001, ANN201
    return client.post(
        "/locations/sites",
        data={"csrf_token": token, "name": name, "address": "1 High St", "lat": lat, "lon": lon},
    )


def deploy_form(token: str, unit_id: str, site_id: int, review: str) -> dict[str, str]:
    return {
        "csrf_token": token,
        "unit_id": unit_id,
        "site_id": str(site_id),
        "purpose": "Fly-tipping",
        "dpia_ref": "DPIA-2026-014",
        "signage_confirmed": "yes",
        "planned_end": "2026-12-31T18:00",
        "review_date": review,
    }


def site_id(engine, name: str) -> int:  # noqa: ANN001
    with session_scope(engine) as s:
        return s.scalar(select(Site.id).where(Site.name == name))


def test_officer_deploys_moves_and_recovers_a_unit(app, unit, engine, clock) -> None:  # noqa: ANN001
    client, token = officer(app)
    assert create_site(client, token).status_code == 303
    assert create_site(client, token, "Market Sq", "51.7540", "-0.3360").status_code == 303
    first, second = site_id(engine, "High St north"), site_id(engine, "Market Sq")
    answer = client.post("/locations/deploy", data=deploy_form(token, unit.unit_id, first, "2026-12-01"))
    assert answer.status_code == 303
    again = client.post("/locations/deploy", data=deploy_form(token, unit.unit_id, first, "2026-12-01"))
    assert again.status_code == 409
    with session_scope(engine) as s:
        dep = s.scalar(select(Deployment))
        assert (dep.purpose, dep.dpia_ref, dep.signage_confirmed) == ("Fly-tipping", "DPIA-2026-014", True)
        assert dep.review_date.isoformat() == "2026-12-01" and dep.planned_end.hour == 18
        first_dep = dep.id
    clock.advance(3600)
    moved = client.post(
        f"/locations/deployments/{first_dep}/move",
        data=deploy_form(token, unit.unit_id, second, "2026-12-15"),
    )
    assert moved.status_code == 303
    with session_scope(engine) as s:
        deps = s.scalars(select(Deployment).order_by(Deployment.id)).all()
        assert [d.site_id for d in deps] == [first, second]
        assert deps[0].recovered_at is not None and deps[1].recovered_at is None
        second_dep = deps[1].id
    unconfirmed = client.post(f"/locations/deployments/{second_dep}/recover", data={"csrf_token": token})
    assert unconfirmed.status_code == 400 and "needs confirming" in unconfirmed.get_data(as_text=True)
    confirmed = {"csrf_token": token, "confirm": "yes"}
    assert client.post(f"/locations/deployments/{second_dep}/recover", data=confirmed).status_code == 303
    assert client.post(f"/locations/deployments/{second_dep}/recover", data=confirmed).status_code == 409
    with session_scope(engine) as s:
        actions = s.scalars(select(AuditLog.action).where(AuditLog.username == "olga").order_by(AuditLog.id))
        assert list(actions) == ["login", "site_create", "site_create", "deploy", "move", "recover"]
    history = client.get(f"/units/{unit.unit_id}").get_data(as_text=True)
    assert history.count("recovered") == 2 and "Market Sq" in history


def test_overdue_review_and_far_gps_are_flagged(app, unit, engine, clock) -> None:  # noqa: ANN001
    client, token = officer(app)
    create_site(client, token)
    today = clock.now().date()
    client.post(
        "/locations/deploy",
        data=deploy_form(
            token, unit.unit_id, site_id(engine, "High St north"), (today + timedelta(days=1)).isoformat()
        ),
    )
    beat(app, unit)  # GPS at the site
    html = client.get("/locations").get_data(as_text=True)
    assert "data-flag=" not in html
    clock.advance(2 * 86400)
    login(client, "olga")  # two days on: a new shift session
    beat(app, unit, 2, gps={"fix": "3d", "lat": 51.7100, "lon": -0.2780})  # ~556 m north
    html = client.get("/locations").get_data(as_text=True)
    assert 'data-flag="review_overdue"' in html and 'data-flag="far_from_site"' in html


def test_far_distance_is_configurable(app, unit, engine) -> None:  # noqa: ANN001
    app.config["SETTINGS"] = app.config["SETTINGS"].model_copy(update={"gps_far_m": 1000})
    client, token = officer(app)
    create_site(client, token)
    client.post(
        "/locations/deploy",
        data=deploy_form(token, unit.unit_id, site_id(engine, "High St north"), "2027-01-01"),
    )
    beat(app, unit, gps={"fix": "3d", "lat": 51.7100, "lon": -0.2780})  # ~556 m: within 1 km
    assert 'data-flag="far_from_site"' not in client.get("/locations").get_data(as_text=True)


@pytest.mark.parametrize(
    "form, message",
    [
        ({"name": "<script>alert(1)</script>", "lat": "51.7", "lon": "-0.2"}, "site name"),
        ({"name": "Robert'); DROP TABLE sites;--", "lat": "51.7", "lon": "-0.2"}, "site name"),
        ({"name": "Ok", "lat": "91", "lon": "0"}, "lat must be between"),
        ({"name": "Ok", "lat": "north", "lon": "0"}, "lat must be a number"),
        ({"name": "Ok", "lat": "51", "lon": "0", "address": "x" * 501}, "address must be plain text"),
    ],
)
def test_bad_site_input_is_refused_and_nothing_stored(app, unit, engine, form, message: str) -> None:  # noqa: ANN001
    client, token = officer(app)
    answer = client.post("/locations/sites", data={"csrf_token": token, **form})
    assert answer.status_code == 400
    assert message in answer.get_data(as_text=True)
    with session_scope(engine) as s:
        assert s.scalar(select(Site)) is None


def test_bad_deployment_input_is_refused(app, unit, engine) -> None:  # noqa: ANN001
    client, token = officer(app)
    create_site(client, token)
    form = deploy_form(token, unit.unit_id, site_id(engine, "High St north"), "not a date")
    answer = client.post("/locations/deploy", data=form)
    assert answer.status_code == 400 and "review date must be a date" in answer.get_data(as_text=True)
    form = deploy_form(token, unit.unit_id, site_id(engine, "High St north"), "2027-01-01")
    form["start"] = "2027-01-01T10:00"
    form["planned_end"] = "2026-12-01T10:00"
    answer = client.post("/locations/deploy", data=form)
    assert answer.status_code == 400 and "planned end must be after the start" in answer.get_data(
        as_text=True
    )
    with session_scope(engine) as s:
        assert s.scalar(select(Deployment)) is None


def test_markup_in_stored_names_is_escaped(app, unit, engine) -> None:  # noqa: ANN001
    """Names that reached the database another way (older data, a direct SQL fix) still cannot run."""
    evil = '<img src=x onerror="alert(1)">'
    with session_scope(engine) as s:
        s.scalar(select(Unit)).name = evil
        s.add(
            Site(council_id=s.scalar(select(Unit)).council_id, name=evil, address=evil, lat=51.7, lon=-0.27)
        )
    body = event_body(unit.unit_id, "20261118T101500.000Z", {}, state="snapshot_uploaded")
    app.test_client().post(f"/api/v1/units/{unit.unit_id}/events", json=body, headers=unit.auth)
    client, _ = officer(app)
    for path in ("/", f"/units/{unit.unit_id}", "/locations", "/events", "/events/feed?after=0"):
        html = client.get(path).get_data(as_text=True)
        assert "<img src=x" not in html, path
    assert "&lt;img src=x onerror=&#34;alert(1)&#34;&gt;" in client.get("/").get_data(as_text=True)
    assert "&lt;img src=x" in client.get("/locations").get_data(as_text=True)


def test_login_page_escapes_the_next_parameter(app) -> None:  # noqa: ANN001
    html = app.test_client().get('/login?next="><script>alert(1)</script>').get_data(as_text=True)
    assert "<script>alert(1)" not in html and "&#34;&gt;&lt;script&gt;" in html
    assert csrf_from(html)


def test_fleet_filters_attention_and_search(app, unit, factory) -> None:  # noqa: ANN001
    quiet = factory.unit("herts-mcu-002", "herts")
    beat(app, unit, camera={"state": "failed"})
    beat(app, quiet)
    alice = app.test_client()
    login(alice, "alice")
    everything = alice.get("/fleet/live").get_data(as_text=True)
    assert 'data-unit="herts-mcu-001"' in everything and 'data-unit="herts-mcu-002"' in everything
    attention = alice.get("/fleet/live?attention=1").get_data(as_text=True)
    assert 'data-unit="herts-mcu-001"' in attention and 'data-unit="herts-mcu-002"' not in attention
    search = alice.get("/fleet/live?q=002").get_data(as_text=True)
    assert 'data-unit="herts-mcu-001"' not in search and 'data-unit="herts-mcu-002"' in search
    page = alice.get("/?attention=1").get_data(as_text=True)
    assert 'data-changes-url="/fleet/changes?attention=1"' in page  # the live refresh keeps the filter
    assert 'data-live-url="/fleet/live?attention=1"' in page
    assert alice.get("/fleet/live?q=%25").status_code == 200  # LIKE wildcards are literal
    assert 'data-unit="' not in alice.get("/fleet/live?q=%25").get_data(as_text=True)


def test_operator_asks_a_unit_for_footage_and_the_heartbeat_carries_it(app, unit, engine) -> None:  # noqa: ANN001
    alice = app.test_client()
    token = login(alice, "alice")
    form = {"csrf_token": token, "start": "2026-07-01T10:00", "end": "2026-07-01T10:05"}  # BST
    assert alice.post(f"/units/{unit.unit_id}/request-upload", data=form).status_code == 303
    answer = (
        app.test_client()
        .post(f"/api/v1/units/{unit.unit_id}/heartbeat", json=heartbeat_body(unit.unit_id), headers=unit.auth)
        .get_json()
    )
    [instruction] = answer["instructions"]
    assert instruction["type"] == "upload_range"
    assert (instruction["start"], instruction["end"]) == (
        "2026-07-01T09:00:00.000Z",
        "2026-07-01T09:05:00.000Z",
    )
    page = alice.get(f"/units/{unit.unit_id}").get_data(as_text=True)
    assert f'data-instruction="{instruction["id"]}"' in page
    with session_scope(engine) as s:
        row = s.scalar(select(AuditLog).where(AuditLog.action == "upload_request"))
        assert row.username == "alice" and row.detail["instruction"] == instruction["id"]
    backwards = {"csrf_token": token, "start": "2026-07-01T10:05", "end": "2026-07-01T10:00"}
    alice.post(f"/units/{unit.unit_id}/request-upload", data=backwards)
    assert "Footage not requested: upload range end must be after its start" in alice.get(
        f"/units/{unit.unit_id}"
    ).get_data(as_text=True)


def test_engineer_cannot_request_footage(app, unit, factory) -> None:  # noqa: ANN001
    factory.user("ed", "engineer", "herts")
    ed = app.test_client()
    token = login(ed, "ed")
    form = {"csrf_token": token, "start": "2026-07-01T10:00", "end": "2026-07-01T10:05"}
    assert ed.post(f"/units/{unit.unit_id}/request-upload", data=form).status_code == 403
    assert "Continuous footage" not in ed.get(f"/units/{unit.unit_id}").get_data(as_text=True)


def test_fleet_pages_put_the_worst_units_first(app, unit, factory, monkeypatch) -> None:  # noqa: ANN001
    from control_room.web import fleet as fleet_page

    monkeypatch.setattr(fleet_page, "PAGE_SIZE", 2)
    for n in (2, 3, 4):
        beat(app, factory.unit(f"herts-mcu-00{n}", "herts"))
    beat(app, factory.unit("herts-mcu-005", "herts"), camera={"state": "failed"})  # alarm
    beat(app, unit, modem={"signal_percent": 5})  # warning only
    alice = app.test_client()
    login(alice, "alice")
    first = alice.get("/fleet/live").get_data(as_text=True)
    order = re.findall(r'data-unit="(herts-mcu-\d+)"', first)
    assert order == ["herts-mcu-005", "herts-mcu-001"]
    assert "5 units" in first and "page 1 of 3" in first
    third = alice.get("/fleet/live?page=3").get_data(as_text=True)
    assert re.findall(r'data-unit="(herts-mcu-\d+)"', third) == ["herts-mcu-004"]
    page = alice.get("/?page=2").get_data(as_text=True)
    assert 'data-changes-url="/fleet/changes?page=2"' in page
    assert re.findall(r'data-unit="(herts-mcu-\d+)"', page) == ["herts-mcu-002", "herts-mcu-003"]


HUGE = "99999999999999999999999"  # more than a 64-bit database integer holds
EXTREME_TIMES = ("0001-01-01T00:00+05:00", "9999-12-31T23:59-05:00")


@pytest.mark.parametrize("path", [
    f"/events/{HUGE}", f"/events/{HUGE}/clip", f"/locations/sites/{HUGE}", f"/events?council={HUGE}",
    f"/events?before={HUGE}", f"/events/feed?site={HUGE}", f"/events/feed?after={HUGE}",
    f"/audit?before={HUGE}", f"/?council={HUGE}",
    *(f"/events{feed}?{arg}={t.replace('+', '%2B')}" for feed in ("", "/feed") for arg in ("since", "until")
      for t in EXTREME_TIMES),
])
def test_out_of_range_numbers_and_times_in_urls_are_not_a_500(app, unit, factory, path: str) -> None:  # noqa: ANN001
    factory.user("ada", "admin", "herts")
    ada = app.test_client()
    login(ada, "ada")
    assert ada.get(path).status_code in (200, 404)


def test_out_of_range_numbers_and_times_in_forms_are_400(app, unit, engine) -> None:  # noqa: ANN001
    olga = app.test_client()
    token = login(olga, "olga")
    olga.post("/locations/sites", data={"csrf_token": token, "name": "Market", "lat": "51.7", "lon": "-0.3"})
    deploy = {"csrf_token": token, "unit_id": unit.unit_id, "site_id": "1", "purpose": "ASB",
              "dpia_ref": "D1", "review_date": "2026-12-01"}
    for change in [{"site_id": HUGE}, *({"start": t} for t in EXTREME_TIMES),
                   *({"planned_end": t} for t in EXTREME_TIMES)]:
        assert olga.post("/locations/deploy", data={**deploy, **change}).status_code in (400, 404), change
    for start in EXTREME_TIMES:
        answer = olga.post(f"/units/{unit.unit_id}/request-upload",
                           data={"csrf_token": token, "start": start, "end": start})
        assert answer.status_code == 303
    with session_scope(engine) as s:
        assert s.scalars(select(Deployment)).all() == []
