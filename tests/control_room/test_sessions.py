"""Sessions that fit a 12-hour shift (issue 13, item 1): an idle timeout and an absolute lifetime,
both configurable; a live fragment without a session answers 401 JSON (the page shows a banner,
never a login form in a panel); logout ends this session only, "log out everywhere" all of them.
"""

from __future__ import annotations

import pytest

from control_room.config import load_settings
from tests.control_room.web_fixtures import login

LIVE = {"X-CCTV-Live": "1"}


@pytest.fixture
def database_url(sqlite_url: str) -> str:
    return sqlite_url


@pytest.fixture
def alice(app, factory):  # noqa: ANN001, ANN201
    factory.user("alice", "operator", "herts")
    client = app.test_client()
    return client, login(client, "alice")


def test_defaults_suit_a_12_hour_shift_and_are_configurable() -> None:
    settings = load_settings({})
    assert settings.session_lifetime_hours >= 12.5 and settings.session_idle_minutes >= 30
    changed = load_settings({"CONTROL_ROOM_SESSION_IDLE_MINUTES": "15",
                             "CONTROL_ROOM_SESSION_LIFETIME_HOURS": "8"})
    assert (changed.session_idle_minutes, changed.session_lifetime_hours) == (15.0, 8.0)


def test_a_live_page_that_keeps_polling_lasts_the_whole_shift(app, alice, clock) -> None:  # noqa: ANN001
    client, _ = alice
    for _ in range(12 * 60 // 5):  # a fleet page polling every 5 minutes for 12 hours
        clock.advance(300)
        answer = client.get("/fleet/live", headers=LIVE)
        assert answer.status_code == 200, (_, answer.get_data(as_text=True)[:200])
    clock.advance(3601)  # just over 13 hours after log-in: the absolute limit
    over = client.get("/fleet/live", headers=LIVE)
    assert over.status_code == 401 and over.get_json()["reason"] == "expired"


def test_an_idle_session_ends_and_a_fragment_gets_json_not_a_login_form(app, alice, clock) -> None:  # noqa: ANN001
    client, _ = alice
    clock.advance(61 * 60)
    answer = client.get("/fleet/live", headers=LIVE)
    assert answer.status_code == 401 and answer.is_json
    body = answer.get_json()
    assert body["reason"] == "idle" and body["login"] == "/login" and "without activity" in body["message"]
    assert "<form" not in answer.get_data(as_text=True)
    page = client.get("/")
    assert page.status_code == 302 and page.headers["Location"].startswith("/login")


def test_logout_ends_this_session_only(app, factory, alice, clock) -> None:  # noqa: ANN001
    desk, token = alice
    phone = app.test_client()
    login(phone, "alice")
    assert desk.post("/logout", data={"csrf_token": token}).status_code == 302
    assert desk.get("/").status_code == 302
    assert phone.get("/").status_code == 200


def test_log_out_everywhere_ends_every_session_and_copied_cookies(app, alice) -> None:  # noqa: ANN001
    desk, token = alice
    phone = app.test_client()
    phone_token = login(phone, "alice")
    stolen = desk.get_cookie("cctv_session").value
    assert phone.post("/logout/everywhere", data={"csrf_token": phone_token}).status_code == 302
    assert desk.get("/").status_code == 302 and phone.get("/").status_code == 302
    thief = app.test_client()
    thief.set_cookie("cctv_session", stolen)
    assert thief.get("/fleet/live", headers=LIVE).get_json()["reason"] == "everywhere"
    login(desk, "alice")
    assert desk.get("/").status_code == 200  # a new log-in works at once
