"""Sessions in a real headless Chromium (Playwright) against the app served by waitress: a live
page whose session ends shows a banner with a login link (never a login form inside a panel), and
disabling a user ends their open pages' sessions at once.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from control_room.config import Settings
from tests.control_room.web_fixtures import CHROMIUM_ARGS, chromium_path, s3_settings

if chromium_path() is None:
    pytest.skip("chromium is not installed (run `make system-deps` as root)", allow_module_level=True)

pytestmark = pytest.mark.slow
ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"
PASSWORD = "correct horse battery"  # noqa: S105
WAIT_MS = 15_000


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args: dict) -> dict:
    return {**browser_type_launch_args, "executable_path": chromium_path(), "headless": True,
            "args": CHROMIUM_ARGS}


@pytest.fixture
def database_url(sqlite_url: str) -> str:
    return sqlite_url


@pytest.fixture
def settings(tmp_path: Path, database_url: str, s3_endpoint: str) -> Settings:
    return s3_settings(tmp_path, database_url, s3_endpoint, web_poll_s=0.5)


def log_in(page, base: str, username: str) -> None:  # noqa: ANN001
    page.goto(base + "/")
    page.fill("#username", username)
    page.fill("#password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(base + "/")


def assert_banner_not_login_form(page, text: str) -> None:  # noqa: ANN001
    banner = page.locator("#session-ended")
    banner.wait_for(timeout=WAIT_MS)
    assert text in banner.inner_text()
    assert page.locator("#fleet-live #username, #fleet-live form[action='/login']").count() == 0
    link = page.locator("#session-login")
    assert link.get_attribute("href") == "/login?next=%2F"


def test_a_live_page_whose_session_expires_shows_a_banner(page, live_server, factory, clock) -> None:  # noqa: ANN001
    base = live_server.url
    factory.unit("herts-mcu-001", "herts")
    factory.user("alice", "operator", "herts")
    log_in(page, base, "alice")
    page.locator('tr[data-unit="herts-mcu-001"]').wait_for(timeout=WAIT_MS)
    clock.advance(13 * 3600 + 1)  # past the shift-length session lifetime
    assert_banner_not_login_form(page, "time limit")
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "session_expired.png"), full_page=True)
    page.click("#session-login")
    page.wait_for_url(base + "/login?next=%2F")
    page.fill("#username", "alice")
    page.fill("#password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(base + "/")


def test_disabling_a_user_ends_their_sessions_at_once(browser, live_server, factory) -> None:  # noqa: ANN001
    base = live_server.url
    factory.unit("herts-mcu-001", "herts")
    factory.user("alice", "operator", "herts")
    factory.user("hana", "admin", "herts")
    contexts = [browser.new_context(), browser.new_context()]
    try:
        alice, admin = (c.new_page() for c in contexts)
        log_in(alice, base, "alice")
        log_in(admin, base, "hana")
        admin.goto(base + "/admin/users")
        admin.locator('tr[data-user="alice"] button[name="go"]').click()
        admin.wait_for_selector('tr[data-user="alice"][data-active="no"]', timeout=WAIT_MS)
        assert_banner_not_login_form(alice, "disabled")
        alice.goto(base + "/")
        assert "/login" in alice.url
    finally:
        for c in contexts:
            c.close()
