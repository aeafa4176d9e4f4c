"""Officers and phones in a real headless Chromium (Playwright) against the app served by waitress:
an officer edits a deployment, records a review and recovers the unit only after confirming; a site's
position is picked on the street map (tiles from a local test tile server); and every page fits a
390 px wide phone screen (document width <= viewport). Screenshots go to tests/artifacts/.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import select

from control_room.config import Settings
from control_room.db import session_scope
from control_room.models import Deployment, Event, Site
from tests.control_room.test_browser import (
    ARTIFACTS,
    WAIT_MS,
    beat,
    browser_type_launch_args,  # noqa: F401 (a fixture)
    deploy_at_site,
    log_in,
    send_event,
)
from tests.control_room.tile_server import TileServer, tile_server
from tests.control_room.web_fixtures import chromium_path, s3_settings

if chromium_path() is None:
    pytest.skip("chromium is not installed (run `make system-deps` as root)", allow_module_level=True)

pytestmark = pytest.mark.slow
PHONE = {"width": 390, "height": 844}


@pytest.fixture
def database_url(sqlite_url: str) -> str:
    return sqlite_url


@pytest.fixture
def tiles() -> TileServer:
    with tile_server() as server:
        yield server


@pytest.fixture
def settings(tmp_path: Path, database_url: str, s3_endpoint: str, tiles: TileServer) -> Settings:
    return s3_settings(tmp_path, database_url, s3_endpoint, web_poll_s=0.5, map_tile_url=tiles.url)


def test_officer_edits_a_deployment_records_a_review_and_confirms_recovery(  # noqa: ANN001
    page, live_server, factory, engine, clock
) -> None:
    base = live_server.url
    unit = factory.unit("herts-mcu-001", "herts")
    factory.user("olga", "officer", "herts")
    beat(base, unit)
    deploy_at_site(engine, unit.unit_id, clock)
    with session_scope(engine) as s:
        dep = s.scalar(select(Deployment))
        dep.signage_confirmed, dep.review_date = False, (clock.now().date().replace(day=1))
        dep_id = dep.id
    log_in(page, base, "olga")
    page.goto(base + "/locations")
    assert page.locator(f"#deployment-{dep_id} [data-flag=signage]").count() == 1
    page.locator(f"#deployment-{dep_id} a.deployment-link").click()
    page.wait_for_url(f"{base}/locations/deployments/{dep_id}")
    page.fill("#edit-deployment textarea[name=purpose]", "Fly-tipping and graffiti")
    page.check("#edit-deployment input[name=signage_confirmed]")
    page.click("#save-deployment")
    page.wait_for_selector(".flash.info >> text=updated: purpose, signage_confirmed")
    assert page.locator("[data-flag=signage]").count() == 0
    page.fill("#outcome", "Still necessary: 3 tipping incidents in November")
    page.fill("#next_review_date", "2026-12-18")
    page.click("#record-review")
    page.wait_for_selector(".flash.info >> text=next is due 2026-12-18")
    assert page.locator("#review-due").inner_text() == "2026-12-18"
    assert page.locator("[data-flag=review_overdue]").count() == 0
    assert "3 tipping incidents" in page.locator("#review-list").inner_text()
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "deployment-reviewed.png"), full_page=True)

    # recovery needs the box ticked: without it the browser does not send the form
    page.click("#recover-button")
    assert page.url == f"{base}/locations/deployments/{dep_id}"
    with session_scope(engine) as s:
        assert s.get(Deployment, dep_id).recovered_at is None
    page.check("#confirm-recover")
    page.click("#recover-button")
    page.wait_for_selector(".flash.info >> text=recovered")
    with session_scope(engine) as s:
        assert s.get(Deployment, dep_id).recovered_at == clock.now()


def test_site_position_picked_on_the_map(page, live_server, factory, engine, tiles) -> None:  # noqa: ANN001
    base = live_server.url
    factory.council("herts", "Herts")
    factory.user("olga", "officer", "herts")
    with session_scope(engine) as s:
        council_id = s.scalar(select(Site.council_id)) or 1
        s.add(Site(council_id=council_id, name="Market Sq", address="", lat=51.7052, lon=-0.2776))
    log_in(page, base, "olga")
    page.goto(base + "/locations")
    page.wait_for_selector("#new-site-map.tiles-ok", timeout=WAIT_MS)
    page.locator("#new-site-map .tilemap").click(position={"x": 120, "y": 90})
    lat, lon = page.input_value("#new-site input[name=lat]"), page.input_value("#new-site input[name=lon]")
    assert 51 < float(lat) < 52.5 and -1 < float(lon) < 0.5
    page.fill("#new-site input[name=name]", "Picked Lane")
    page.click("#new-site button[type=submit]")
    page.wait_for_selector(".flash.info >> text=Site Picked Lane created")
    with session_scope(engine) as s:
        site = s.scalar(select(Site).where(Site.name == "Picked Lane"))
    assert (round(site.lat, 6), round(site.lon, 6)) == (float(lat), float(lon))
    assert tiles.served


def test_every_page_fits_a_390_px_phone(  # noqa: ANN001
    browser, live_server, factory, engine, clock, s3_endpoint, clip_file, snapshot_file
) -> None:
    base = live_server.url
    unit = factory.unit("herts-mcu-001", "herts")
    factory.user("ada", "admin", "herts")
    error = "a long camera error without spaces: VIDIOC_DQBUF_timeout_on_/dev/video0_after_10000_ms"
    beat(base, unit, camera={"state": "reopening", "fps": 0, "restarts": 2, "error": error})
    deploy_at_site(engine, unit.unit_id, clock)
    event_id = send_event(base, unit, s3_endpoint, clip_file, snapshot_file, "20261118T101500.000Z")
    with session_scope(engine) as s:
        event_pk = s.scalar(select(Event.id).where(Event.event_id == event_id))
        site_id, dep_id = s.scalar(select(Site.id)), s.scalar(select(Deployment.id))
    context = browser.new_context(viewport=PHONE, is_mobile=True, has_touch=True)
    page = context.new_page()
    pages = {
        "login": "/login",
    }
    try:
        page.goto(base + "/login")
        assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
        log_in(page, base, "ada")
        pages.update({
            "fleet": "/", "events": "/events", "event": f"/events/{event_pk}",
            "unit": f"/units/{unit.unit_id}",
            "locations": "/locations", "site": f"/locations/sites/{site_id}",
            "site-edit": f"/locations/sites/{site_id}/edit", "deployment": f"/locations/deployments/{dep_id}",
            "audit": "/audit", "evidence": "/evidence",
        })
        ARTIFACTS.mkdir(exist_ok=True)
        too_wide = {}
        for name, path in pages.items():
            answer = page.goto(base + path)
            assert answer.status == 200, path
            page.wait_for_load_state("load")
            width = page.evaluate("document.documentElement.scrollWidth")
            page.screenshot(path=str(ARTIFACTS / f"phone-{name}.png"), full_page=True)
            if width > PHONE["width"]:
                too_wide[path] = width
        assert too_wide == {}
    finally:
        context.close()
