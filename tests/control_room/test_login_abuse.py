"""Login abuse cannot hurt units or lock people out (issue 13, item 3): passwords are hashed in a
small bounded pool off the request threads, limits per address, per name and per known device back
off instead of locking, and a council's admin sees their own people's failed log-ins.
"""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import select

from control_room.db import session_scope
from control_room.errors import HashingBusy
from control_room.hashing import HashPool
from control_room.models import LoginFailure
from tests.control_room.web_fixtures import csrf_from, login

PASSWORD = "correct horse battery"  # noqa: S105


@pytest.fixture
def database_url(sqlite_url: str) -> str:
    return sqlite_url


def attempt(client, username: str, password: str, ip: str = "192.0.2.10"):  # noqa: ANN001, ANN201
    token = csrf_from(client.get("/login", environ_base={"REMOTE_ADDR": ip}).get_data(as_text=True))
    return client.post("/login", data={"username": username, "password": password, "csrf_token": token},
                       environ_base={"REMOTE_ADDR": ip})


def test_failures_back_off_rather_than_lock(app, factory, clock) -> None:  # noqa: ANN001
    factory.user("alice", "operator", "herts")
    client = app.test_client()
    for _ in range(5):
        assert attempt(client, "alice", "wrong").status_code == 401
    held = attempt(client, "alice", PASSWORD)
    assert held.status_code == 429 and "for this user name" in held.get_data(as_text=True)
    wait = int(held.headers["Retry-After"])
    assert 1 <= wait <= 2
    clock.advance(wait)
    assert attempt(client, "alice", PASSWORD).status_code == 302  # backoff, not a 15-minute lock


def test_a_stranger_cannot_lock_out_a_known_device(app, factory) -> None:  # noqa: ANN001
    factory.user("alice", "operator", "herts")
    desk = app.test_client()
    token = login(desk, "alice")  # this browser is now a known device for alice
    assert desk.get_cookie("cctv_device") is not None
    desk.post("/logout", data={"csrf_token": token})
    stranger = app.test_client()
    for i in range(12):
        attempt(stranger, "alice", f"guess-{i}", ip="198.51.100.7")
    assert attempt(stranger, "alice", PASSWORD, ip="198.51.100.7").status_code == 429
    assert attempt(desk, "alice", PASSWORD).status_code == 302


def test_spraying_one_password_over_many_names_is_limited_per_address(app, factory) -> None:  # noqa: ANN001
    client = app.test_client()
    for i in range(10):
        assert attempt(client, f"name-{i}", "Winter2026!").status_code == 401
    held = attempt(client, "name-10", "Winter2026!")
    assert held.status_code == 429 and "from this address" in held.get_data(as_text=True)
    assert attempt(client, "name-11", "Winter2026!", ip="192.0.2.99").status_code == 401  # another address


def test_every_attempt_is_recorded_throttled_ones_marked(app, factory, engine) -> None:  # noqa: ANN001
    client = app.test_client()
    for i in range(11):
        attempt(client, f"name-{i}", "x")
    with session_scope(engine) as s:
        rows = s.scalars(select(LoginFailure).order_by(LoginFailure.id)).all()
    assert [r.throttled for r in rows] == [False] * 10 + [True]
    assert {r.ip for r in rows} == {"192.0.2.10"}


def test_passwords_are_hashed_off_the_request_thread(app, factory, monkeypatch) -> None:  # noqa: ANN001
    import hashlib

    from control_room.hashing import decoy_hash

    factory.user("alice", "operator", "herts")
    decoy_hash()  # made once per process (cached): counted here only if no earlier test in it made it
    client = app.test_client()
    real, threads = hashlib.scrypt, []
    monkeypatch.setattr(hashlib, "scrypt",
                        lambda *a, **k: threads.append(threading.current_thread().name) or real(*a, **k))
    assert attempt(client, "alice", "wrong").status_code == 401
    assert attempt(client, "nobody", "wrong").status_code == 401
    assert len(threads) == 2 and all(name.startswith("password-hash") for name in threads)


def test_a_full_hashing_pool_answers_503_at_once(app, factory, engine) -> None:  # noqa: ANN001
    factory.user("alice", "operator", "herts")
    pool = HashPool(workers=1, pending=0)
    app.extensions["cctv_hashing"] = pool
    release, started = threading.Event(), threading.Event()
    blocker = threading.Thread(target=pool._run, args=(lambda: started.set() or release.wait(10),))
    blocker.start()
    try:
        assert started.wait(10)
        with pytest.raises(HashingBusy):
            pool.check(None, "x")
        answer = attempt(app.test_client(), "alice", PASSWORD)
        assert answer.status_code == 503 and answer.headers["Retry-After"] == "2"
        assert "busy" in answer.get_data(as_text=True)
        with session_scope(engine) as s:  # refused before any lookup, and still recorded
            rows = s.scalars(select(LoginFailure)).all()
        assert [(r.username, r.throttled) for r in rows] == [("alice", True)]
    finally:
        release.set()
        blocker.join(10)
    assert attempt(app.test_client(), "alice", PASSWORD).status_code == 302


def test_a_council_admin_sees_failed_logins_of_their_own_people(app, factory) -> None:  # noqa: ANN001
    factory.user("alice", "operator", "herts")
    factory.user("bob", "operator", "beds")
    factory.user("hana", "admin", "herts")
    client = app.test_client()
    attempt(client, "alice", "wrong")
    attempt(client, "bob", "wrong")
    admin = app.test_client()
    login(admin, "hana")
    page = admin.get("/audit?action=login_failed").get_data(as_text=True)
    assert "alice" in page and "bob" not in page
