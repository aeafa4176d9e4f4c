"""Log-in, sessions, CSRF and security headers of the control room pages (Flask test client, SQLite).

The spec: passwords are checked with a slow hash, a session cookie is HttpOnly and SameSite=Lax,
every state change needs the session's CSRF token, repeated failures lock the name out.
"""

from __future__ import annotations

import pytest
from sqlalchemy import select

from control_room.db import session_scope
from control_room.models import AuditLog, User
from tests.control_room.web_fixtures import csrf_from, login


@pytest.fixture
def database_url(sqlite_url: str) -> str:
    return sqlite_url


@pytest.fixture
def client(app, factory):  # noqa: ANN001, ANN201
    factory.user("alice", "operator", "herts")
    return app.test_client()


def audit_actions(engine, action: str) -> list[AuditLog]:  # noqa: ANN001
    with session_scope(engine) as s:
        return list(s.scalars(select(AuditLog).where(AuditLog.action == action)))


def test_pages_need_a_login(client) -> None:  # noqa: ANN001
    for path in ("/", "/events", "/locations", "/units/herts-mcu-001", "/events/1/clip"):
        answer = client.get(path)
        assert answer.status_code == 302, path
        assert answer.headers["Location"].startswith("/login?next="), path


def test_login_sets_a_hardened_cookie_and_audits(client, engine) -> None:  # noqa: ANN001
    token = csrf_from(client.get("/login").get_data(as_text=True))
    answer = client.post(
        "/login", data={"username": "alice", "password": "correct horse battery", "csrf_token": token}
    )
    assert answer.status_code == 302 and answer.headers["Location"] == "/"
    cookie = answer.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Secure" not in cookie
    assert "alice" in client.get("/").get_data(as_text=True)
    assert [row.username for row in audit_actions(engine, "login")] == ["alice"]


def test_secure_cookie_behind_tls(app, factory) -> None:  # noqa: ANN001
    app.config["SESSION_COOKIE_SECURE"] = True  # what secure_cookies=True sets
    client = app.test_client()
    answer = client.get("/login")
    assert "Secure" in answer.headers["Set-Cookie"]


def test_secure_cookies_setting(settings, clock) -> None:  # noqa: ANN001
    from control_room import create_app

    app = create_app(settings.model_copy(update={"secure_cookies": True}), migrate=True, clock=clock)
    assert app.config["SESSION_COOKIE_SECURE"] is True


def test_wrong_password_is_refused_and_audited(client, engine) -> None:  # noqa: ANN001
    token = csrf_from(client.get("/login").get_data(as_text=True))
    answer = client.post("/login", data={"username": "alice", "password": "wrong", "csrf_token": token})
    assert answer.status_code == 401
    assert "Wrong user name or password" in answer.get_data(as_text=True)
    assert client.get("/").status_code == 302  # still logged out
    assert [row.item_id for row in audit_actions(engine, "login_failed")] == ["alice"]


def test_repeated_failures_hold_the_name_back(client) -> None:  # noqa: ANN001
    token = csrf_from(client.get("/login").get_data(as_text=True))
    for _ in range(5):
        assert (
            client.post(
                "/login", data={"username": "alice", "password": "nope", "csrf_token": token}
            ).status_code
            == 401
        )
    answer = client.post(
        "/login", data={"username": "alice", "password": "correct horse battery", "csrf_token": token}
    )
    assert answer.status_code == 429
    assert client.get("/").status_code == 302


@pytest.mark.parametrize("username", ["alice", "nobody", "bob-disabled"])
def test_every_refused_login_costs_one_slow_hash(client, engine, factory, monkeypatch, username: str) -> None:  # noqa: ANN001
    """An unknown or disabled name is not answered faster than a wrong password (no name probing)."""
    import hashlib

    from control_room import hashing

    hashing.decoy_hash()  # made once per process, on first use
    factory.user("bob-disabled", "operator", "herts")
    with session_scope(engine) as s:
        s.scalar(select(User).where(User.username == "bob-disabled")).active = False
    token = csrf_from(client.get("/login").get_data(as_text=True))
    real_scrypt, calls = hashlib.scrypt, []
    monkeypatch.setattr(hashlib, "scrypt", lambda *a, **k: calls.append(1) or real_scrypt(*a, **k))
    answer = client.post("/login", data={"username": username, "password": "wrong", "csrf_token": token})
    assert answer.status_code == 401
    assert len(calls) == 1


def test_huge_form_is_refused_before_it_is_read(client) -> None:  # noqa: ANN001
    """An anonymous POST cannot make the service spool megabytes to disk (the CSRF check reads the form)."""
    import io

    big = {"username": "alice", "f": (io.BytesIO(b"x" * 3 * 1024 * 1024), "big.bin")}
    answer = client.post("/login", data=big, content_type="multipart/form-data")
    assert answer.status_code == 413


def test_login_without_csrf_is_refused(client) -> None:  # noqa: ANN001
    client.get("/login")
    answer = client.post("/login", data={"username": "alice", "password": "correct horse battery"})
    assert answer.status_code == 400
    assert "CSRF" in answer.get_data(as_text=True)
    assert client.get("/").status_code == 302


@pytest.mark.parametrize("path", ["/logout", "/locations/sites", "/locations/deploy", "/events/1/verify"])
def test_state_changes_without_csrf_are_refused(client, path: str) -> None:  # noqa: ANN001
    login(client, "alice")
    assert client.post(path, data={"name": "x"}).status_code == 400
    assert client.post(path, data={"csrf_token": "forged"}).status_code == 400
    assert client.post(path, data={"csrf_token": "forg\u00e9"}).status_code == 400  # not a 500
    assert client.get("/").status_code == 200  # the session survived


def test_logout_with_csrf_ends_the_session(client) -> None:  # noqa: ANN001
    token = login(client, "alice")
    assert client.post("/logout", data={"csrf_token": token}).status_code == 302
    assert client.get("/").status_code == 302


def test_a_copied_session_cookie_dies_at_logout(app, client, clock) -> None:  # noqa: ANN001
    """Logging out ends the session server-side: a cookie copied before (shared PC, proxy log) is useless."""
    token = login(client, "alice")
    stolen = client.get_cookie("cctv_session").value
    other = app.test_client()
    login(other, "alice")  # the same person on a second machine
    assert client.post("/logout", data={"csrf_token": token}).status_code == 302
    thief = app.test_client()
    thief.set_cookie("cctv_session", stolen)
    answer = thief.get("/")
    assert answer.status_code == 302 and answer.headers["Location"].startswith("/login")
    assert other.get("/").status_code == 200  # logging out ends this session only (issue 13)
    login(client, "alice")
    assert client.get("/").status_code == 200  # and a new log-in works


def test_changed_password_ends_old_sessions(client, engine) -> None:  # noqa: ANN001
    login(client, "alice")
    with session_scope(engine) as s:
        s.scalar(select(User).where(User.username == "alice")).set_password("a new long passphrase")
    assert client.get("/").status_code == 302


def test_disabled_user_is_logged_out(client, engine) -> None:  # noqa: ANN001
    login(client, "alice")
    with session_scope(engine) as s:
        s.scalar(select(User).where(User.username == "alice")).active = False
    assert client.get("/").status_code == 302


@pytest.mark.parametrize("target", ["//evil.example/x", "https://evil.example/", "/\\evil"])
def test_no_open_redirect_after_login(client, target: str) -> None:  # noqa: ANN001
    token = csrf_from(client.get("/login").get_data(as_text=True))
    answer = client.post(
        "/login",
        data={"username": "alice", "password": "correct horse battery", "csrf_token": token, "next": target},
    )
    assert answer.headers["Location"] == "/"


def test_next_path_is_followed(client) -> None:  # noqa: ANN001
    token = csrf_from(client.get("/login").get_data(as_text=True))
    answer = client.post(
        "/login",
        data={
            "username": "alice",
            "password": "correct horse battery",
            "csrf_token": token,
            "next": "/locations",
        },
    )
    assert answer.headers["Location"] == "/locations"


def test_security_headers_on_pages_not_on_api(client) -> None:  # noqa: ANN001
    page = client.get("/login")
    assert "default-src 'self'" in page.headers["Content-Security-Policy"]
    assert page.headers["X-Frame-Options"] == "DENY"
    api = client.get("/api/v1/health")
    assert "Content-Security-Policy" not in api.headers
