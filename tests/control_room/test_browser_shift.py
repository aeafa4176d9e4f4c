"""The control room through a 12-hour shift, in a real headless Chromium (Playwright) against the app
served by waitress, footage in a moto S3 server: an operator acknowledges, annotates and reviews an
event while a colleague's list updates live, a new event beeps and counts in the tab title, and the
admin finds every step in the audit log.

Screenshots go to tests/artifacts/ (gitignored).
"""

from __future__ import annotations

import pytest
from sqlalchemy import select

from control_room.db import session_scope
from control_room.models import Event
from tests.control_room.test_browser import (  # the fixtures and helpers of the first browser tests
    ARTIFACTS,
    WAIT_MS,
    browser_type_launch_args,  # noqa: F401 (a fixture)
    log_in,
    send_event,
    settings,  # noqa: F401 (a fixture)
)
from tests.control_room.web_fixtures import chromium_path

if chromium_path() is None:
    pytest.skip("chromium is not installed (run `make system-deps` as root)", allow_module_level=True)

pytestmark = pytest.mark.slow


@pytest.fixture
def database_url(sqlite_url: str) -> str:
    return sqlite_url


def console_errors(page) -> list[str]:  # noqa: ANN001
    errors: list[str] = []
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    return errors


def test_operator_reviews_and_annotates_an_event_and_the_audit_log_shows_it(  # noqa: ANN001
    browser, live_server, factory, engine, clock, s3_endpoint, clip_file, snapshot_file
) -> None:
    base = live_server.url
    unit = factory.unit("herts-mcu-001", "herts")
    factory.user("alice", "operator", "herts")
    factory.user("olga", "officer", "herts")
    factory.user("ada", "admin", "herts")
    event_id = send_event(base, unit, s3_endpoint, clip_file, snapshot_file, "20261118T101500.000Z")
    clock.advance(5)
    with session_scope(engine) as s:
        pk = s.scalar(select(Event.id).where(Event.event_id == event_id))

    # a colleague keeps the events list open, with sound and desktop notifications on
    watcher_context = browser.new_context()
    watcher_context.grant_permissions(["notifications"], origin=base)
    watcher = watcher_context.new_page()
    watcher_errors = console_errors(watcher)
    log_in(watcher, base, "olga")
    watcher.goto(base + "/events")
    row = watcher.locator(f"#event-{pk}")
    assert row.get_attribute("data-review") == "new"
    assert watcher.title().startswith("(1) Events")
    watcher.check("#alert-sound")
    watcher.evaluate("window.__noReload = true")

    context = browser.new_context()
    page = context.new_page()
    errors = console_errors(page)
    try:
        log_in(page, base, "alice")
        page.goto(base + "/events")
        page.locator(f"#event-{pk} >> text=open").click()
        page.wait_for_url(f"{base}/events/{pk}")
        assert page.locator("#review-state").inner_text() == "new"
        page.click("#acknowledge")
        page.wait_for_selector("#review[data-review=acknowledged]")
        page.fill("#note", "White van, registration partly visible; owner <not> identified")
        page.click("#add-note")
        page.wait_for_selector("#review-history li[data-action=note]")
        page.fill("#note", "Passed to enforcement, case 4411")
        page.click("#mark-reviewed")
        page.wait_for_selector("#review[data-review=reviewed]")
        history = page.locator("#review-history li")
        assert history.count() == 3
        assert "owner <not> identified" in page.locator("#review-history li[data-action=note]").inner_text()
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "event-reviewed.png"), full_page=True)

        # the colleague's row changed state without a reload, and the title count went down
        watcher.wait_for_selector(f"#event-{pk}[data-review=reviewed]", timeout=WAIT_MS)
        watcher.wait_for_function("() => document.title.startsWith('Events')", timeout=WAIT_MS)
        assert watcher.evaluate("window.__noReload") is True
        # a new event arrives: a new row, a beep, a notification, and the count in the title
        clock.advance(5)
        second = send_event(base, unit, s3_endpoint, clip_file, snapshot_file, "20261118T102000.000Z")
        watcher.locator(f'tr[data-event-id="{second}"][data-review=new]').wait_for(timeout=WAIT_MS)
        watcher.wait_for_function("() => document.title.startsWith('(1) Events')", timeout=WAIT_MS)
        assert watcher.evaluate("window.__cctvAlerts.beeps") >= 2  # one when ticked, one for the event
        assert watcher.evaluate("window.__cctvAlerts.notifications") == 1
        assert watcher.evaluate("window.__noReload") is True
        watcher.screenshot(path=str(ARTIFACTS / "events-live.png"), full_page=True)

        # previous/next between the two events
        page.goto(f"{base}/events/{pk}")
        page.click("#event-next")
        assert page.locator("h1").inner_text() == f"Event {second}"
        page.click("#event-previous")
        page.wait_for_url(f"{base}/events/{pk}")

        # the council's admin sees every step, with who and when, in the audit log
        admin = browser.new_context().new_page()
        log_in(admin, base, "ada")
        admin.goto(f"{base}/audit?item={event_id}&user=alice")
        for action in ("event_acknowledge", "event_note", "event_review", "event_view"):
            assert admin.locator(f"#audit tr[data-action={action}]").count() >= 1, action
        assert "owner <not> identified" in admin.locator("#audit tr[data-action=event_note]").inner_text()
        admin.screenshot(path=str(ARTIFACTS / "audit-review.png"), full_page=True)
        admin.context.close()
    finally:
        context.close()
        watcher_context.close()
    assert errors == [] and watcher_errors == []
