"""`cctv-control-room` as a person or provisioning runs it: subprocesses, a real `serve`, the token
printed once, bad names refused with exit 2, and kill -9 of a serving process losing nothing.
"""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import requests
from sqlalchemy import func, select

from control_room.cli import main
from control_room.db import make_engine, session_scope
from control_room.models import Council, Event, Unit, User
from control_room.provision import hash_token
from tests.control_room import bodies
from tests.control_room.pg import free_port
from tests.waiting import wait_until

HB = "/api/v1/units/herts-mcu-001/heartbeat"
CODE = "from control_room.cli import main; raise SystemExit(main())"


def cli(env: dict[str, str], *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", CODE, *args], env=env, input=stdin, capture_output=True,
                          text=True, timeout=60)


@pytest.fixture
def env(tmp_path: Path, database_url: str) -> dict[str, str]:
    return {**os.environ, "CONTROL_ROOM_INSTANCE_DIR": str(tmp_path / "instance"),
            "CONTROL_ROOM_DATABASE_URL": database_url}


@pytest.fixture
def run(env, monkeypatch, capsys):
    """main(argv) in this process (fast), with the same environment; returns (code, stdout, stderr)."""
    for key in ("CONTROL_ROOM_INSTANCE_DIR", "CONTROL_ROOM_DATABASE_URL"):
        monkeypatch.setenv(key, env[key])

    def call(*args: str, stdin: str = "") -> tuple[int, str, str]:
        capsys.readouterr()
        monkeypatch.setattr(sys, "stdin", io.StringIO(stdin))
        code = main(list(args))
        out, err = capsys.readouterr()
        return code, out, err

    return call


def start_serve(env: dict[str, str]) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-c", CODE, "serve", "--port", str(port)], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    url = f"http://127.0.0.1:{port}"

    def answers() -> bool:
        try:
            return requests.get(url + "/api/v1/health", timeout=5).status_code == 200
        except requests.RequestException:  # refused while starting, or a read timeout under load
            return False

    try:  # a timeout on observable state: start-up is slow on a loaded host
        wait_until(answers, 120, "serve to answer /api/v1/health", interval=0.1, proc=proc,
                   detail=lambda: proc.stderr.read().decode()
                   if proc.stderr and proc.poll() is not None else "")
    except AssertionError:
        proc.kill()
        raise
    return proc, url


def test_provision_serve_and_revoke(run, env, database_url):
    assert run("db", "upgrade")[0] == 0
    assert run("create-council", "herts", "Hertfordshire County Council")[0] == 0
    made = cli(env, "create-unit", "herts-mcu-001", "--council", "herts")  # the real console entry
    assert made.returncode == 0, made.stderr
    token = made.stdout.strip()
    assert len(made.stdout.splitlines()) == 1 and len(token) >= 43
    assert "printed once" in made.stderr and token not in made.stderr
    engine = make_engine(database_url)
    with session_scope(engine) as s:
        unit = s.scalar(select(Unit).where(Unit.unit_id == "herts-mcu-001"))
        assert unit.token_hash == hash_token(token) and token not in str(unit.token_hash)
    proc, url = start_serve(env)
    try:
        auth = {"Authorization": f"Bearer {token}"}
        r = requests.post(url + HB, json=bodies.heartbeat(), headers=auth, timeout=10)
        assert r.status_code == 200 and r.json()["ok"] is True
        assert run("revoke-unit", "herts-mcu-001")[0] == 0
        r = requests.post(url + HB, json=bodies.heartbeat(), headers=auth, timeout=10)
        assert (r.status_code, r.json()) == (401, {"error": "revoked"})  # at once, no restart
        rotated = run("create-unit", "herts-mcu-001", "--rotate")[1].strip()
        assert requests.post(url + "/api/v1/units/herts-mcu-001/heartbeat", json=bodies.heartbeat(),
                             headers={"Authorization": f"Bearer {rotated}"}, timeout=10).status_code == 200
        assert requests.post(url + "/api/v1/units/herts-mcu-001/heartbeat", json=bodies.heartbeat(),
                             headers=auth, timeout=10).status_code == 401
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    engine.dispose()


def test_create_user_hashes_the_password_slowly(run, database_url):
    run("db", "upgrade")
    run("create-council", "herts", "Hertfordshire")
    code, out, err = run("create-user", "alice", "--role", "officer", "--council", "herts",
                         "--password-stdin", stdin="a long passphrase\n")
    assert code == 0 and out == "user alice (officer, herts) created\n", err
    code, _, err = run("create-user", "root-admin", "--role", "admin", stdin="another passphrase\n")
    assert code == 0, err
    engine = make_engine(database_url)
    with session_scope(engine) as s:
        alice = s.scalar(select(User).where(User.username == "alice"))
        assert alice.password_hash.startswith("scrypt:") and "a long passphrase" not in alice.password_hash
        assert alice.check_password("a long passphrase") and not alice.check_password("a long passphrase!")
        root = s.scalar(select(User).where(User.username == "root-admin"))
        assert root.council_id is None and root.partnership_wide
    engine.dispose()


@pytest.mark.parametrize("args,stdin,message", [
    (("create-council", "herts", "<b>Herts</b>"), "", "council name '<b>Herts</b>' is not allowed"),
    (("create-council", "x'; DROP TABLE councils;--", "X"), "", "council id"),
    (("create-council", "herts", "Dup"), "", "council 'herts' already exists"),
    (("create-unit", "<script>", "--council", "herts"), "", "unit id '<script>' is not allowed"),
    (("create-unit", "herts-mcu-002", "--council", "nowhere"), "", "no council 'nowhere'"),
    (("create-unit", "herts-mcu-002"), "", "needs --council"),
    (("revoke-unit", "herts-mcu-404"), "", "no unit 'herts-mcu-404'"),
    (("create-user", "bob';--", "--role", "operator", "--council", "herts"), "long enough pass\n",
     "username"),
    (("create-user", "bob", "--role", "operator"), "long enough pass\n", "only an admin may have no council"),
    (("create-user", "bob", "--role", "operator", "--council", "herts"), "short\n", "at least 10 characters"),
    (("request-upload", "herts-mcu-001", "2026-11-28T13:05:00Z", "2026-11-28T13:00:00Z"), "",
     "end must be after its start"),
    (("request-upload", "herts-mcu-001", "2026-11-28T13:00:00", "2026-11-28T13:05:00"), "",
     "needs a date, time and zone"),
])
def test_bad_input_exits_2_with_one_line_and_changes_nothing(run, database_url, args, stdin, message):
    run("db", "upgrade")
    run("create-council", "herts", "Hertfordshire")
    run("create-unit", "herts-mcu-001", "--council", "herts")
    engine = make_engine(database_url)

    def counts() -> tuple[int, int, int]:
        with session_scope(engine) as s:
            return tuple(s.scalar(select(func.count()).select_from(m)) for m in (Council, Unit, User))

    before = counts()
    code, _, err = run(*args, stdin=stdin)
    assert code == 2
    assert len(err.strip().splitlines()) == 1 and message in err, err
    assert counts() == before
    engine.dispose()


def test_bad_setting_is_named(run, monkeypatch):
    monkeypatch.setenv("CONTROL_ROOM_HEARTBEAT_INTERVAL_S", "soon")
    code, _, err = run("db", "current")
    assert code == 2 and "CONTROL_ROOM_HEARTBEAT_INTERVAL_S" in err


def test_secret_key_file_is_private(tmp_path, sqlite_url):
    env = {**os.environ, "CONTROL_ROOM_INSTANCE_DIR": str(tmp_path), "CONTROL_ROOM_DATABASE_URL": sqlite_url}
    proc, _ = start_serve(env)
    proc.terminate()
    proc.wait(timeout=30)
    key = tmp_path / "secret_key"
    assert key.stat().st_mode & 0o777 == 0o600
    key.chmod(0o644)
    proc = subprocess.run([sys.executable, "-c", CODE, "serve", "--port", str(free_port())], env=env,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and "readable by others" in proc.stderr


def test_kill_9_while_serving_loses_nothing_acknowledged(run, env, database_url):
    run("db", "upgrade")
    run("create-council", "herts", "Hertfordshire")
    token = run("create-unit", "herts-mcu-001", "--council", "herts")[1].strip()
    auth = {"Authorization": f"Bearer {token}"}
    proc, url = start_serve(env)
    acknowledged = []
    for i in range(20):
        body = bodies.event(stamp=f"20261128T1300{i:02d}.000Z")
        if requests.post(url + "/api/v1/units/herts-mcu-001/events", json=body, headers=auth, timeout=10).ok:
            acknowledged.append(body["event_id"])
        assert requests.post(url + "/api/v1/units/herts-mcu-001/heartbeat", json=bodies.heartbeat(seq=i),
                             headers=auth, timeout=10).ok
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    engine = make_engine(database_url)
    with session_scope(engine) as s:
        stored = set(s.scalars(select(Event.event_id)))
        unit = s.scalar(select(Unit).where(Unit.unit_id == "herts-mcu-001"))
    assert set(acknowledged) == stored and len(stored) == 20
    assert unit.last_seq == 19
    engine.dispose()
    proc, url = start_serve(env)  # and it starts again on the same database
    try:
        assert requests.post(url + "/api/v1/units/herts-mcu-001/heartbeat", json=bodies.heartbeat(seq=20),
                             headers=auth, timeout=10).ok
    finally:
        proc.terminate()
        proc.wait(timeout=30)
