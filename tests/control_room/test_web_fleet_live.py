"""The fleet page's live updates (Flask test client, SQLite, the app's ManualClock).

The spec: `/fleet/changes?t=<cursor>` sends only what changed since the cursor: nothing (a few bytes)
when nothing did; the row, summary and map point of a unit that sent a heartbeat, went offline or was
deployed; a unit no longer matching the filter is hidden; no or a bad cursor asks for a resync.
Rows carry deployment flags and the tile server is allowed by the Content-Security-Policy.
"""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from sqlalchemy import select

from control_room.db import session_scope
from control_room.models import Deployment, Site, Unit
from tests.control_room.web_fixtures import heartbeat_body, login


@pytest.fixture
def database_url(sqlite_url: str) -> str:
    return sqlite_url


@pytest.fixture
def units(app, factory):  # noqa: ANN001, ANN201
    factory.user("alice", "operator", "herts")
    made = [factory.unit(f"herts-mcu-00{i}", "herts") for i in (1, 2, 3)]
    for unit in made:
        beat(app, unit)
    return made


def beat(app, unit, seq: int = 1, **parts) -> None:  # noqa: ANN001
    answer = app.test_client().post(f"/api/v1/units/{unit.unit_id}/heartbeat",
                                    json=heartbeat_body(unit.unit_id, seq, **parts), headers=unit.auth)
    assert answer.status_code == 200, answer.get_data(as_text=True)


def pk_of(engine, unit_id: str) -> str:  # noqa: ANN001
    with session_scope(engine) as s:
        return str(s.scalar(select(Unit.id).where(Unit.unit_id == unit_id)))


class Page:
    """The fleet page as the browser holds it: a cursor, advanced by each answer."""

    def __init__(self, client, query: str = "") -> None:  # noqa: ANN001
        self.client, self.query = client, query
        html = client.get("/" + query).get_data(as_text=True)
        self.t = re.search(r'id="fleet-state" data-t="([^"]+)"', html).group(1)

    def poll(self) -> tuple[dict, int]:
        sep = "&" if self.query else "?"
        answer = self.client.get(f"/fleet/changes{self.query}{sep}t={self.t.replace('+', '%2B')}")
        data = answer.get_json()
        self.t = data["t"]
        return data, len(answer.data)


def test_only_changed_units_are_sent(app, units, engine, clock) -> None:  # noqa: ANN001
    alice = app.test_client()
    login(alice, "alice")
    clock.advance(5)
    page = Page(alice)
    clock.advance(5)
    quiet, size = page.poll()
    assert set(quiet) == {"t"} and size < 80
    clock.advance(5)
    beat(app, units[1], 2, modem={"signal_percent": 12, "technology": "lte"})
    clock.advance(5)
    data, _ = page.poll()
    pk = pk_of(engine, units[1].unit_id)
    assert list(data["rows"]) == [pk] and "weak signal 12%" in data["rows"][pk]
    assert "3 units · 3 online · 1 need attention" in data["summary"]
    assert [(p["id"], p["state"]) for p in data["points"]] == [(units[1].unit_id, "attention")]
    assert set(page.poll()[0]) == {"t"}  # sent once


def test_going_offline_is_a_change_with_no_heartbeat(app, units, engine, clock) -> None:  # noqa: ANN001
    alice = app.test_client()
    login(alice, "alice")
    clock.advance(5)
    page = Page(alice)
    clock.advance(60)
    for unit in units[:2]:
        beat(app, unit, 2)
    clock.advance(60)
    assert set(page.poll()[0]["rows"]) == {pk_of(engine, u.unit_id) for u in units[:2]}
    clock.advance(65)  # the third unit's last heartbeat is now 190 s old: offline after 180 s
    data, _ = page.poll()
    silent = pk_of(engine, units[2].unit_id)
    assert list(data["rows"]) == [silent] and 'data-online="no"' in data["rows"][silent]
    assert "2 online" in data["summary"]


def test_a_deployment_changes_the_row_and_flags_show_in_it(app, units, engine, clock) -> None:  # noqa: ANN001
    alice = app.test_client()
    login(alice, "alice")
    clock.advance(5)
    page = Page(alice)
    clock.advance(5)
    with session_scope(engine) as s:
        unit = s.scalar(select(Unit).where(Unit.unit_id == units[0].unit_id))
        site = Site(council_id=unit.council_id, name="Far Lane", lat=51.98, lon=-0.28)  # ~30 km off
        s.add(site)
        s.flush()
        s.add(Deployment(unit_pk=unit.id, site_id=site.id, purpose="p", dpia_ref="D-1", start=clock.now(),
                         created_at=clock.now(), signage_confirmed=False,
                         review_date=(clock.now() - timedelta(days=2)).date()))
    clock.advance(5)
    data, _ = page.poll()
    row = data["rows"][pk_of(engine, units[0].unit_id)]
    assert "Far Lane" in row and 'data-flag="far_from_site"' in row and "30.6 km from site" in row
    assert 'data-flag="signage"' in row and 'data-flag="review_overdue"' in row
    assert {p["kind"] for p in data["points"]} == {"site", "unit"}


def test_filtered_page_hides_a_unit_that_no_longer_matches(app, units, engine, clock) -> None:  # noqa: ANN001
    alice = app.test_client()
    login(alice, "alice")
    beat(app, units[0], 2, camera={"state": "stalled", "fps": 0, "restarts": 1})
    clock.advance(5)
    page = Page(alice, "?attention=1")
    clock.advance(5)
    beat(app, units[0], 3)
    clock.advance(5)
    data, _ = page.poll()
    assert data["rows"] == {} and data["hide"] == [pk_of(engine, units[0].unit_id)]


def test_an_implausible_fix_stays_off_the_street_map(app, units, engine, clock) -> None:  # noqa: ANN001
    alice = app.test_client()
    login(alice, "alice")
    clock.advance(5)
    page = Page(alice)
    clock.advance(60)
    beat(app, units[0], 2, gps={"fix": "3d", "lat": 0.0, "lon": 0.0})
    clock.advance(5)
    data, _ = page.poll()
    assert list(data["rows"]) == [pk_of(engine, units[0].unit_id)] and data["points"] == []
    html = alice.get("/").get_data(as_text=True)
    assert units[0].unit_id not in html[html.index('class="map-points"'):].split("</script>")[0]


@pytest.mark.parametrize("cursor", ["", "yesterday", "3000-01-01T00:00:00"])
def test_no_or_bad_cursor_asks_for_a_resync(app, units, cursor: str) -> None:  # noqa: ANN001
    alice = app.test_client()
    login(alice, "alice")
    assert alice.get(f"/fleet/changes?t={cursor}").get_json()["resync"] is True


def test_csp_allows_the_configured_tile_server_only(app, units) -> None:  # noqa: ANN001
    alice = app.test_client()
    login(alice, "alice")
    csp = alice.get("/").headers["Content-Security-Policy"]
    assert "img-src 'self' data: https://tile.openstreetmap.org;" in csp
    app.config["SETTINGS"] = app.config["SETTINGS"].model_copy(
        update={"map_tile_url": "https://{s}.tiles.council.example:8443/osm/{z}/{x}/{y}.png"})
    csp = alice.get("/").headers["Content-Security-Policy"]
    assert "img-src 'self' data: https://*.tiles.council.example:8443;" in csp
    app.config["SETTINGS"] = app.config["SETTINGS"].model_copy(update={"map_tile_url": ""})
    html = alice.get("/").get_data(as_text=True)
    assert "img-src 'self' data:;" in alice.get("/").headers["Content-Security-Policy"]
    assert 'class="mapwrap tiles-off"' in html
