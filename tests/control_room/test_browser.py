"""The control room in a real headless Chromium (Playwright) against the app served over HTTP by waitress,
with footage in a moto S3 server: log in, a unit turns online, an event arrives, its clip plays.

Screenshots of the fleet and event pages are saved to tests/artifacts/ (gitignored).
"""

from __future__ import annotations

from pathlib import Path

import pytest
import requests
from sqlalchemy import select

from control_room.config import Settings
from control_room.db import session_scope
from control_room.models import AuditLog, Deployment, Event, Site, Unit
from tests.control_room.web_fixtures import (
    CHROMIUM_ARGS,
    chromium_path,
    event_body,
    footage_key,
    heartbeat_body,
    put_footage,
    s3_settings,
)

if chromium_path() is None:
    pytest.skip("chromium is not installed (run `make system-deps` as root)", allow_module_level=True)

pytestmark = pytest.mark.slow
ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"
PASSWORD = "correct horse battery"  # noqa: S105
WAIT_MS = 15_000


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args: dict) -> dict:
    """Debian's chromium (no browser download is possible here), headless, nothing fetched from outside."""
    return {
        **browser_type_launch_args,
        "executable_path": chromium_path(),
        "headless": True,
        "args": CHROMIUM_ARGS,
    }


@pytest.fixture
def database_url(sqlite_url: str) -> str:
    return sqlite_url


@pytest.fixture
def settings(tmp_path: Path, database_url: str, s3_endpoint: str) -> Settings:
    # no street map tiles from the internet: test_browser_map.py serves its own
    return s3_settings(tmp_path, database_url, s3_endpoint, web_poll_s=0.5, map_tile_url="")


def log_in(page, base: str, username: str) -> None:  # noqa: ANN001
    page.goto(base + "/")
    assert "/login" in page.url
    page.fill("#username", username)
    page.fill("#password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(base + "/")


def send_event(base: str, unit, s3: str, clip: Path, snapshot: Path, stamp: str) -> str:  # noqa: ANN001
    objects = {
        "snapshot": put_footage(s3, footage_key(unit.unit_id, stamp, "snapshot.jpg"), snapshot).as_protocol(),
        "clip": put_footage(s3, footage_key(unit.unit_id, stamp, "clip.mp4"), clip).as_protocol(),
    }
    body = event_body(unit.unit_id, stamp, objects, site="High St north")
    answer = requests.post(
        f"{base}/api/v1/units/{unit.unit_id}/events", json=body, headers=unit.auth, timeout=10
    )
    assert answer.status_code == 200, answer.text
    return body["event_id"]


def beat(base: str, unit, seq: int = 1, **parts) -> None:  # noqa: ANN001
    answer = requests.post(
        f"{base}/api/v1/units/{unit.unit_id}/heartbeat",
        json=heartbeat_body(unit.unit_id, seq, **parts),
        headers=unit.auth,
        timeout=10,
    )
    assert answer.status_code == 200, answer.text


def deploy_at_site(engine, unit_id: str, clock) -> None:  # noqa: ANN001
    """A site ~35 m from the unit's GPS and an open deployment, so the map shows both."""
    with session_scope(engine) as s:
        unit = s.scalar(select(Unit).where(Unit.unit_id == unit_id))
        site = Site(
            council_id=unit.council_id, name="High St north", address="1 High St", lat=51.7052, lon=-0.2776
        )
        s.add(site)
        s.flush()
        s.add(
            Deployment(
                unit_pk=unit.id,
                site_id=site.id,
                purpose="Fly-tipping",
                dpia_ref="DPIA-2026-014",
                signage_confirmed=True,
                start=clock.now(),
                review_date=clock.now().date(),
            )
        )


def test_unit_online_new_event_and_clip_plays(  # noqa: ANN001
    page, live_server, factory, engine, clock, s3_endpoint, clip_file, snapshot_file
) -> None:
    base = live_server.url
    unit = factory.unit("herts-mcu-001", "herts")
    factory.user("alice", "operator", "herts")
    deploy_at_site(engine, unit.unit_id, clock)
    errors: list[str] = []  # console errors include Content-Security-Policy violations
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    log_in(page, base, "alice")
    row = page.locator(f'tr[data-unit="{unit.unit_id}"]')
    assert row.get_attribute("data-online") == "no"
    page.evaluate("window.__noReload = true")

    beat(base, unit)
    page.wait_for_selector(f'tr[data-unit="{unit.unit_id}"][data-online="yes"]', timeout=WAIT_MS)
    assert page.evaluate("window.__noReload") is True  # the row changed without a reload
    assert row.locator(".status").inner_text() == "online"
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "fleet.png"), full_page=True)

    page.click("nav >> text=Events")
    page.wait_for_url(base + "/events")
    page.evaluate("window.__noReload = true")
    event_id = send_event(base, unit, s3_endpoint, clip_file, snapshot_file, "20261118T101500.000Z")
    new_row = page.locator(f'tr[data-event-id="{event_id}"]')
    new_row.wait_for(timeout=WAIT_MS)
    assert page.evaluate("window.__noReload") is True

    new_row.locator("text=open").click()
    page.wait_for_selector("video#clip")
    page.wait_for_function("() => document.querySelector('#snapshot').naturalWidth > 0", timeout=WAIT_MS)
    page.evaluate("document.querySelector('#clip').play()")
    page.wait_for_function("() => document.querySelector('#clip').currentTime > 1.5", timeout=WAIT_MS)
    video = page.evaluate(
        "(() => { const v = document.querySelector('#clip');"
        " return {w: v.videoWidth, h: v.videoHeight, d: v.duration, e: v.error}; })()"
    )
    assert (video["w"], video["h"], video["e"]) == (480, 360, None) and 7 < video["d"] < 9
    assert page.locator('tr[data-object="clip"]').get_attribute("data-state") == "verified"
    page.screenshot(path=str(ARTIFACTS / "event.png"), full_page=True)

    with session_scope(engine) as s:
        pk = s.scalar(select(Event.id).where(Event.event_id == event_id))
        rows = s.scalars(select(AuditLog).where(AuditLog.item_id == event_id)).all()
    assert page.url == f"{base}/events/{pk}"
    actions = {(r.username, r.action) for r in rows}
    assert {("alice", "event_view"), ("alice", "clip_view"), ("alice", "snapshot_view")} <= actions

    for seq, (signal, temp) in enumerate(((55, 52.0), (62, 55.5), (48, 53.0)), start=2):
        clock.advance(60)
        beat(
            base,
            unit,
            seq,
            modem={"signal_percent": signal, "technology": "lte"},
            system={"cpu_temp_c": temp},
        )
    page.goto(f"{base}/units/{unit.unit_id}")
    assert page.locator("svg.chart polyline").count() == 4
    page.screenshot(path=str(ARTIFACTS / "unit.png"), full_page=True)
    page.goto(f"{base}/locations")
    assert page.locator(f'#deployments tr[data-unit="{unit.unit_id}"]').count() == 1
    page.screenshot(path=str(ARTIFACTS / "locations.png"), full_page=True)
    assert errors == []


def test_user_of_another_council_gets_404(
    browser,
    live_server,
    factory,
    engine,
    s3_endpoint,  # noqa: ANN001
    clip_file,
    snapshot_file,
) -> None:
    base = live_server.url
    unit = factory.unit("herts-mcu-001", "herts")
    factory.user("bob", "operator", "beds")
    event_id = send_event(base, unit, s3_endpoint, clip_file, snapshot_file, "20261118T101500.000Z")
    with session_scope(engine) as s:
        pk = s.scalar(select(Event.id).where(Event.event_id == event_id))
    context = browser.new_context()
    page = context.new_page()
    try:
        log_in(page, base, "bob")
        for path in (
            f"/events/{pk}",
            f"/events/{pk}/clip",
            f"/events/{pk}/snapshot",
            f"/units/{unit.unit_id}",
        ):
            response = page.goto(base + path)
            assert response.status == 404, path
        page.goto(base + "/events")
        assert page.locator(f'tr[data-event-id="{event_id}"]').count() == 0
        assert page.locator("#events-table tbody tr.empty").count() == 1
    finally:
        context.close()
    with session_scope(engine) as s:
        assert s.scalars(select(AuditLog).where(AuditLog.item_id == event_id)).all() == []
