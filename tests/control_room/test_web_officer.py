"""Officers' and engineers' views (Flask test client, SQLite, the app's ManualClock).

The spec: an officer edits a deployment and a site (before and after in the audit log) and records a
review with the next due date (the deployment's review date moves, the overdue flag clears); a bad
field is 400 with nothing stored; a recovered deployment cannot be edited; engineers may look but not
change; the unit page shows error text, restarts, throttling, instructions and distance in km, and
its refreshing part is served alone; charts break their line across a silence and label round times.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import select

from control_room.db import session_scope
from control_room.models import AuditLog, Deployment, DeploymentReview, Site, Unit
from control_room.web.charts import line_chart, time_ticks
from tests.control_room.web_fixtures import heartbeat_body, login


@pytest.fixture
def database_url(sqlite_url: str) -> str:
    return sqlite_url


@pytest.fixture
def deployed(app, factory, engine, clock):  # noqa: ANN001, ANN201
    """A unit deployed at a site ~30 km from its GPS, review overdue, signage not confirmed."""
    factory.user("olga", "officer", "herts")
    factory.user("ed", "engineer", "herts")
    unit = factory.unit("herts-mcu-001", "herts")
    beat(app, unit)
    with session_scope(engine) as s:
        row = s.scalar(select(Unit).where(Unit.unit_id == unit.unit_id))
        site = Site(council_id=row.council_id, name="Far Lane", address="", lat=51.98, lon=-0.278)
        s.add(site)
        s.flush()
        dep = Deployment(unit_pk=row.id, site_id=site.id, purpose="Fly-tipping", dpia_ref="DPIA-1",
                         signage_confirmed=False, start=clock.now() - timedelta(days=30),
                         created_at=clock.now(), review_date=(clock.now() - timedelta(days=3)).date())
        s.add(dep)
        s.flush()
        return unit, dep.id, site.id


def beat(app, unit, seq: int = 1, **parts) -> None:  # noqa: ANN001
    answer = app.test_client().post(f"/api/v1/units/{unit.unit_id}/heartbeat",
                                    json=heartbeat_body(unit.unit_id, seq, **parts), headers=unit.auth)
    assert answer.status_code == 200, answer.get_data(as_text=True)


def edit_form(token: str, **changes: str) -> dict[str, str]:
    form = {"csrf_token": token, "purpose": "Fly-tipping", "dpia_ref": "DPIA-1", "review_date": "2026-11-15"}
    form.update(changes)
    return form


def test_officer_edits_a_deployment_and_records_a_review(app, deployed, engine, clock) -> None:  # noqa: ANN001
    unit, dep_id, _ = deployed
    olga = app.test_client()
    token = login(olga, "olga")
    page = olga.get(f"/locations/deployments/{dep_id}").get_data(as_text=True)
    assert 'data-flag="review_overdue"' in page and 'data-flag="signage"' in page and "30.6 km" in page
    answer = olga.post(f"/locations/deployments/{dep_id}/edit",
                       data=edit_form(token, purpose="Fly-tipping and ASB", signage_confirmed="yes"))
    assert answer.status_code == 303
    answer = olga.post(f"/locations/deployments/{dep_id}/review",
                       data={"csrf_token": token, "outcome": "Still needed: two incidents this month",
                             "next_review_date": "2026-12-18"})
    assert answer.status_code == 303
    page = olga.get(f"/locations/deployments/{dep_id}").get_data(as_text=True)
    assert 'data-flag="review_overdue"' not in page and 'data-flag="signage"' not in page
    assert "Still needed: two incidents this month" in page and "2026-12-18" in page
    with session_scope(engine) as s:
        dep = s.get(Deployment, dep_id)
        assert (dep.purpose, dep.signage_confirmed, dep.review_date) == ("Fly-tipping and ASB", True,
                                                                         date(2026, 12, 18))
        assert dep.updated_at == clock.now()
        review = s.scalar(select(DeploymentReview))
        assert (review.username, review.next_review_date) == ("olga", date(2026, 12, 18))
        rows = s.scalars(select(AuditLog).where(AuditLog.item_id == unit.unit_id))
        audit = {r.action: r.detail for r in rows}
    assert audit["deployment_edit"]["before"] == {"purpose": "Fly-tipping", "signage_confirmed": False}
    assert audit["deployment_edit"]["after"] == {"purpose": "Fly-tipping and ASB", "signage_confirmed": True}
    assert audit["deployment_review"]["next_due"] == "2026-12-18"
    assert audit["deployment_review"]["was_due"] == "2026-11-15"


@pytest.mark.parametrize(
    ("path", "form", "message"),
    [
        ("review", {"outcome": "", "next_review_date": "2026-12-18"}, "outcome is required"),
        ("review", {"outcome": "ok", "next_review_date": "2026-11-18"}, "must be after today"),
        ("review", {"outcome": "ok", "next_review_date": "18/12/2026"}, "must be a date"),
        ("edit", {"purpose": "p", "dpia_ref": "D", "review_date": ""}, "review date is required"),
        ("edit", {"purpose": "p", "dpia_ref": "D", "review_date": "2026-12-01",
                  "planned_end": "2020-01-01T10:00"}, "planned end must be after the start"),
    ],
)
def test_bad_fields_are_refused_and_nothing_stored(app, deployed, engine, path, form, message) -> None:  # noqa: ANN001
    _, dep_id, _ = deployed
    olga = app.test_client()
    token = login(olga, "olga")
    answer = olga.post(f"/locations/deployments/{dep_id}/{path}", data={"csrf_token": token, **form})
    assert answer.status_code == 400 and message in answer.get_data(as_text=True)
    with session_scope(engine) as s:
        dep = s.get(Deployment, dep_id)
        assert dep.updated_at is None and dep.purpose == "Fly-tipping"
        assert s.scalar(select(DeploymentReview)) is None
        assert not s.scalars(select(AuditLog).where(AuditLog.action.like("deployment%"))).all()


def test_engineer_looks_but_cannot_change_and_ended_deployments_are_final(app, deployed, engine) -> None:  # noqa: ANN001
    _, dep_id, site_id = deployed
    ed = app.test_client()
    token = login(ed, "ed")
    page = ed.get(f"/locations/deployments/{dep_id}").get_data(as_text=True)
    assert "Far Lane" in page and 'id="review-form"' not in page
    assert ed.post(f"/locations/deployments/{dep_id}/edit", data=edit_form(token)).status_code == 403
    assert ed.get(f"/locations/sites/{site_id}/edit").status_code == 403
    olga = app.test_client()
    token = login(olga, "olga")
    assert olga.post(f"/locations/deployments/{dep_id}/recover",
                     data={"csrf_token": token, "confirm": "yes"}).status_code == 303
    assert olga.post(f"/locations/deployments/{dep_id}/edit", data=edit_form(token)).status_code == 409


def test_officer_edits_a_site_and_the_audit_keeps_the_old_position(app, deployed, engine) -> None:  # noqa: ANN001
    _, _, site_id = deployed
    olga = app.test_client()
    token = login(olga, "olga")
    page = olga.get(f"/locations/sites/{site_id}/edit").get_data(as_text=True)
    assert 'data-pick="edit-site"' in page and "leaflet.js" in page
    answer = olga.post(f"/locations/sites/{site_id}/edit", data={
        "csrf_token": token, "name": "Far Lane layby", "address": "A1(M) j6", "lat": "51.7052",
        "lon": "-0.2776"})
    assert answer.status_code == 303
    with session_scope(engine) as s:
        site = s.get(Site, site_id)
        assert (site.name, site.lat, site.lon) == ("Far Lane layby", 51.7052, -0.2776)
        row = s.scalar(select(AuditLog).where(AuditLog.action == "site_edit"))
    assert row.detail["before"]["lat"] == 51.98 and row.detail["after"]["name"] == "Far Lane layby"
    bad = olga.post(f"/locations/sites/{site_id}/edit", data={
        "csrf_token": token, "name": "x", "address": "", "lat": "91", "lon": "0"})
    assert bad.status_code == 400 and "lat must be between" in bad.get_data(as_text=True)


def test_unit_page_shows_health_instructions_and_distance(app, deployed, clock) -> None:  # noqa: ANN001
    unit, _, _ = deployed
    clock.advance(60)
    beat(app, unit, 2, camera={"state": "reopening", "fps": 0, "restarts": 4,
                               "error": "VIDIOC_DQBUF: <timeout>"},
         system={"cpu_temp_c": 81.0, "throttled": True, "throttled_flags": "0x50005", "undervoltage": True})
    olga = app.test_client()
    login(olga, "olga")
    page = olga.get(f"/units/{unit.unit_id}").get_data(as_text=True)
    live = olga.get(f"/units/{unit.unit_id}/live").get_data(as_text=True)
    for html in (page, live):
        assert "VIDIOC_DQBUF: &lt;timeout&gt;" in html
        assert 'id="camera-restarts"><span class="badge warn">4<' in html
        assert "throttled (0x50005)" in html and "under-voltage" in html
        assert "30.6 km from the site" in html and 'data-flag="far_from_site"' in html
    assert 'data-poll-url="/units/herts-mcu-001/live"' in page and "<html" not in live


def test_chart_breaks_across_a_silence_and_labels_round_times() -> None:
    t0 = datetime(2026, 11, 18, 9, 0, tzinfo=UTC)
    samples = [(t0 + timedelta(minutes=m), 50.0 + m % 7) for m in (*range(0, 60, 5), *range(180, 240, 5))]
    chart = line_chart("Signal", "%", samples, window=(t0 - timedelta(hours=1), t0 + timedelta(hours=5)),
                       gap_s=900)
    assert chart.gaps == 1 and len(chart.segments) == 2
    first_x = float(chart.segments[0].split()[0].split(",")[0])
    assert first_x > 48  # the window starts an hour before the first sample: blank space, not stretched
    labels = [label for _, label in chart.x_ticks]
    assert labels == ["08:00", "09:00", "10:00", "11:00", "12:00", "13:00", "14:00"]
    week = time_ticks(t0.timestamp(), (t0 + timedelta(days=7)).timestamp())
    assert [label for _, label in week][:2] == ["Thu 19", "Fri 20"]
    summer = time_ticks(datetime(2026, 7, 1, 9, 0, tzinfo=UTC).timestamp(),
                        datetime(2026, 7, 1, 15, 0, tzinfo=UTC).timestamp())
    assert summer[0][1] == "10:00"  # BST: 09:00 UTC is 10:00 in the UK


def test_another_councils_officer_gets_404_and_nothing_changes(app, deployed, factory, engine) -> None:  # noqa: ANN001
    _, dep_id, site_id = deployed
    factory.user("bea", "officer", "beds")
    bea = app.test_client()
    token = login(bea, "bea")
    assert bea.get(f"/locations/deployments/{dep_id}").status_code == 404
    assert bea.post(f"/locations/deployments/{dep_id}/edit", data=edit_form(token)).status_code == 404
    assert bea.post(f"/locations/deployments/{dep_id}/review", data={
        "csrf_token": token, "outcome": "x", "next_review_date": "2026-12-18"}).status_code == 404
    assert bea.get(f"/locations/sites/{site_id}/edit").status_code == 404
    assert bea.post(f"/locations/sites/{site_id}/edit", data={
        "csrf_token": token, "name": "Mine now", "lat": "51", "lon": "0"}).status_code == 404
    assert bea.post(f"/locations/deployments/{dep_id}/recover",
                    data={"csrf_token": token, "confirm": "yes"}).status_code == 404
    with session_scope(engine) as s:
        dep = s.get(Deployment, dep_id)
        assert (dep.updated_at, dep.recovered_at, s.get(Site, site_id).name) == (None, None, "Far Lane")
        assert s.scalar(select(DeploymentReview)) is None
