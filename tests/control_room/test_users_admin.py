"""User administration (issue 13, item 2), page and CLI, audited: invite or create, disable (ends
their sessions at once), re-enable, reset a password (one-time link or a temporary one that must be
changed), change role and council, list with last log-in; a council's admin only for their council.
"""

from __future__ import annotations

import re

import pytest
from sqlalchemy import select

from control_room import cli
from control_room.db import session_scope
from control_room.models import AuditLog, User
from tests.control_room.web_fixtures import csrf_from, login

PASSWORD = "correct horse battery"  # noqa: S105


@pytest.fixture
def database_url(sqlite_url: str) -> str:
    return sqlite_url


@pytest.fixture
def admin(app, factory):  # noqa: ANN001, ANN201
    factory.user("alice", "operator", "herts")
    factory.user("bob", "operator", "beds")
    factory.user("hana", "admin", "herts")
    client = app.test_client()
    return client, login(client, "hana")


def actions(engine) -> list[tuple[str, str, str]]:  # noqa: ANN001
    with session_scope(engine) as s:
        return [(r.username, r.action, r.item_id) for r in s.scalars(select(AuditLog).order_by(AuditLog.id))
                if r.action.startswith(("user_", "password_"))]


def test_disabling_ends_their_sessions_at_once_and_re_enabling_restores(app, admin, engine) -> None:  # noqa: ANN001
    client, token = admin
    alice = app.test_client()
    login(alice, "alice")
    assert client.post("/admin/users/alice/disable", data={"csrf_token": token}).status_code == 303
    over = alice.get("/fleet/live", headers={"X-CCTV-Live": "1"})
    assert over.status_code == 401 and over.get_json()["reason"] == "disabled"
    fresh = app.test_client()
    form = csrf_from(fresh.get("/login").get_data(as_text=True))
    refused = fresh.post("/login", data={"username": "alice", "password": PASSWORD, "csrf_token": form})
    assert refused.status_code == 401
    assert client.post("/admin/users/alice/enable", data={"csrf_token": token}).status_code == 303
    login(app.test_client(), "alice")
    assert actions(engine) == [("hana", "user_disable", "alice"), ("hana", "user_enable", "alice")]


def test_a_temporary_password_must_be_changed_at_first_log_in(app, admin, engine) -> None:  # noqa: ANN001
    client, token = admin
    made = client.post("/admin/users", data={"csrf_token": token, "username": "carol", "role": "officer",
                                             "method": "temporary", "temporary_password": "temporary-123"})
    assert made.status_code == 303
    carol = app.test_client()
    form = csrf_from(carol.get("/login").get_data(as_text=True))
    carol.post("/login", data={"username": "carol", "password": "temporary-123", "csrf_token": form})
    forced = carol.get("/")
    assert forced.status_code == 302 and forced.headers["Location"] == "/account/password"
    carol_token = csrf_from(carol.get("/account/password").get_data(as_text=True))
    changed = carol.post("/account/password", data={
        "csrf_token": carol_token, "current_password": "temporary-123",
        "new_password": "my own passphrase", "confirm_password": "my own passphrase"})
    assert changed.status_code == 303
    assert carol.get("/").status_code == 200
    with session_scope(engine) as s:
        user = s.scalar(select(User).where(User.username == "carol"))
        assert user.council.slug == "herts" and user.must_change_password is False
    assert [a[1] for a in actions(engine)] == ["user_create", "password_change"]


def test_an_invitation_link_sets_the_password_once(app, admin) -> None:  # noqa: ANN001
    client, token = admin
    page = client.post("/admin/users", data={"csrf_token": token, "username": "dave", "role": "engineer",
                                             "method": "link"}).get_data(as_text=True)
    link = re.search(r"(/account/set-password/[A-Za-z0-9_-]+)", page).group(1)
    guest = app.test_client()
    form = csrf_from(guest.get(link).get_data(as_text=True))
    data = {"csrf_token": form, "new_password": "dave's passphrase", "confirm_password": "dave's passphrase"}
    assert guest.post(link, data=data).status_code == 303
    assert guest.post(link, data=data).status_code == 404  # used once
    login(app.test_client(), "dave", "dave's passphrase")


def test_a_password_reset_link_ends_sessions_and_works(app, admin) -> None:  # noqa: ANN001
    client, token = admin
    alice = app.test_client()
    login(alice, "alice")
    page = client.post("/admin/users/alice/reset", data={"csrf_token": token, "method": "link"})
    assert alice.get("/").status_code == 302
    link = re.search(r"(/account/set-password/[A-Za-z0-9_-]+)", page.get_data(as_text=True)).group(1)
    form = csrf_from(alice.get(link).get_data(as_text=True))
    alice.post(link, data={"csrf_token": form, "new_password": "a fresh passphrase",
                           "confirm_password": "a fresh passphrase"})
    login(app.test_client(), "alice", "a fresh passphrase")


def test_change_role_and_the_list_shows_last_login(app, admin, engine) -> None:  # noqa: ANN001
    client, token = admin
    answer = client.post("/admin/users/alice/role", data={"csrf_token": token, "role": "officer"})
    assert answer.status_code == 303
    page = client.get("/admin/users").get_data(as_text=True)
    assert 'data-user="alice"' in page and "officer" in page and 'data-user="bob"' not in page
    assert actions(engine)[-1][1] == "user_role"


def test_a_council_admin_cannot_touch_other_councils_or_themselves(app, admin, engine) -> None:  # noqa: ANN001
    client, token = admin
    assert client.post("/admin/users/bob/disable", data={"csrf_token": token}).status_code == 400
    assert client.post("/admin/users/hana/disable", data={"csrf_token": token}).status_code == 400
    moved = client.post("/admin/users/alice/role",
                        data={"csrf_token": token, "role": "admin", "council": "beds"})
    assert moved.status_code == 400
    with session_scope(engine) as s:
        assert all(u.active for u in s.scalars(select(User)))


def test_operators_cannot_reach_user_administration(app, admin) -> None:  # noqa: ANN001
    alice = app.test_client()
    token = login(alice, "alice")
    assert alice.get("/admin/users").status_code == 403
    assert alice.post("/admin/users/bob/disable", data={"csrf_token": token}).status_code == 403


def test_the_cli_administers_users_and_audits(settings, app, factory, engine, capsys,  # noqa: ANN001
                                              monkeypatch) -> None:  # noqa: ANN001
    monkeypatch.setenv("CONTROL_ROOM_DATABASE_URL", settings.database_url)
    factory.user("alice", "operator", "herts")
    assert cli.main(["disable-user", "alice"]) == 0
    assert cli.main(["enable-user", "alice"]) == 0
    assert cli.main(["set-role", "alice", "--role", "officer", "--council", "herts"]) == 0
    assert cli.main(["reset-password", "alice"]) == 0
    assert capsys.readouterr().out.strip().splitlines()[-1].startswith("/account/set-password/")
    assert cli.main(["list-users"]) == 0
    assert "alice\tofficer\therts\tactive" in capsys.readouterr().out
    assert cli.main(["disable-user", "nobody"]) == 2
    assert "no user 'nobody'" in capsys.readouterr().err
    assert [a[1] for a in actions(engine)] == ["user_disable", "user_enable", "user_role",
                                               "user_password_reset"]
