"""Council scope and roles on every page (Flask test client, SQLite and PostgreSQL, real S3 server).

The spec: a council's people see only their council's units, events, footage and sites; another
council's item answers 404 as if it did not exist; a partnership admin sees all; an engineer sees
no footage; only officers and admins change deployments.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import select

from control_room.config import Settings
from control_room.db import session_scope
from control_room.models import AuditLog
from tests.control_room.web_fixtures import (
    World,
    login,
    make_world,
    s3_settings,
)


@pytest.fixture
def settings(tmp_path: Path, database_url: str, s3_endpoint: str) -> Settings:
    return s3_settings(tmp_path, database_url, s3_endpoint)


@pytest.fixture
def world(app, factory, s3_endpoint, clip_file, snapshot_file) -> World:  # noqa: ANN001
    return make_world(app, factory, s3_endpoint, clip_file, snapshot_file)


def as_user(app, username: str):  # noqa: ANN001, ANN201
    client = app.test_client()
    login(client, username)
    return client


def test_operator_sees_only_their_council(app, world: World) -> None:  # noqa: ANN001
    alice = as_user(app, "alice")
    fleet = alice.get("/fleet/live").get_data(as_text=True)
    assert world.herts_unit in fleet and world.beds_unit not in fleet
    events = alice.get("/events").get_data(as_text=True)
    assert f"/events/{world.herts_event}" in events and f"/events/{world.beds_event}" not in events
    feed = alice.get("/events/feed?after=0").get_json()
    assert feed["count"] == 1 and f"/events/{world.herts_event}" in feed["html"]


PATHS = [
    "/units/{unit}",
    "/events/{event}",
    "/events/{event}/clip",
    "/events/{event}/snapshot",
    "/events/{event}/clip?download=1",
]


def test_other_councils_items_are_404(app, world: World, engine) -> None:  # noqa: ANN001
    alice = as_user(app, "alice")
    for path in PATHS:
        answer = alice.get(
            path.format(unit=world.beds_unit, event=world.beds_event), headers={"Range": "bytes=0-99"}
        )
        assert answer.status_code == 404, path
        assert answer.data[:4] != b"\x00\x00\x00 ", path  # not a byte of the MP4
        # the same item of the user's own council is there: the 404 is the scope, not the route
        own = path.format(unit=world.herts_unit, event=world.herts_event)
        assert alice.get(own, headers={"Range": "bytes=0-99"}).status_code in (200, 206), path
    with session_scope(engine) as s:  # nothing of the other council's footage was audited as seen
        assert s.scalars(select(AuditLog).where(AuditLog.item_id.like(f"{world.beds_unit}%"))).all() == []


def test_filtering_by_another_council_shows_nothing(app, world: World) -> None:  # noqa: ANN001
    bob = as_user(app, "bob")
    answer = bob.get(f"/events/feed?after=0&unit={world.herts_unit}").get_json()
    assert answer["count"] == 0


def test_partnership_admin_sees_every_council(app, world: World) -> None:  # noqa: ANN001
    pat = as_user(app, "pat")
    fleet = pat.get("/fleet/live").get_data(as_text=True)
    assert world.herts_unit in fleet and world.beds_unit in fleet
    assert pat.get(f"/events/{world.beds_event}").status_code == 200
    assert pat.get("/events/feed?after=0").get_json()["count"] == 2


def test_engineer_sees_the_fleet_but_no_footage(app, world: World) -> None:  # noqa: ANN001
    ed = as_user(app, "ed")
    assert ed.get("/").status_code == 200
    assert ed.get(f"/units/{world.herts_unit}").status_code == 200
    assert ed.get("/events").status_code == 403
    assert ed.get(f"/events/{world.herts_event}/clip").status_code == 403


def test_only_officers_change_deployments(app, world: World) -> None:  # noqa: ANN001
    alice = app.test_client()
    token = login(alice, "alice")
    answer = alice.post(
        "/locations/sites", data={"csrf_token": token, "name": "High St", "lat": "51.7", "lon": "-0.27"}
    )
    assert answer.status_code == 403
    olga = app.test_client()
    token = login(olga, "olga")
    answer = olga.post(
        "/locations/sites", data={"csrf_token": token, "name": "High St", "lat": "51.7", "lon": "-0.27"}
    )
    assert answer.status_code == 303
    assert "High St" in olga.get("/locations").get_data(as_text=True)
    assert "High St" not in as_user(app, "bob").get("/locations").get_data(as_text=True)


def test_audit_log_page_for_admins_only_and_scoped(app, world: World, factory) -> None:  # noqa: ANN001
    as_user(app, "alice").get(f"/events/{world.herts_event}")
    as_user(app, "bob").get(f"/events/{world.beds_event}")
    factory.user("hanna", "admin", "herts")
    hanna = as_user(app, "hanna").get("/audit?action=event_view").get_data(as_text=True)
    assert world.herts_unit + "-" in hanna and world.beds_unit + "-" not in hanna
    everyone = as_user(app, "pat").get("/audit?action=event_view").get_data(as_text=True)
    assert world.herts_unit + "-" in everyone and world.beds_unit + "-" in everyone
    assert as_user(app, "alice").get("/audit").status_code == 403


def test_council_admin_sees_who_else_opened_their_footage(app, world: World, factory) -> None:  # noqa: ANN001
    """A partnership admin's look at a council's footage is in that council's audit log (not another's)."""
    pat = as_user(app, "pat")
    pat.get(f"/events/{world.herts_event}/snapshot")
    pat.get(f"/events/{world.beds_event}/snapshot")
    factory.user("hanna", "admin", "herts")
    hanna = as_user(app, "hanna").get("/audit?action=snapshot_view").get_data(as_text=True)
    assert hanna.count('data-action="snapshot_view"') == 1
    assert "pat" in hanna and world.herts_unit + "-" in hanna and world.beds_unit + "-" not in hanna
