"""Fixtures for the control room tests: a migrated app on SQLite or a throwaway PostgreSQL, the
app served over real HTTP by waitress in a thread, and a factory for councils, units and users.

Shared by the API tests (cr-core) and the web/browser tests (cr-web).
"""

from __future__ import annotations

import os
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path

import pytest
import waitress.server
from flask import Flask
from sqlalchemy import Engine, text

from agent.clock import ManualClock
from control_room import create_app, migrate, provision
from control_room.config import Settings
from control_room.db import get_engine, make_engine, session_scope
from control_room.models import User
from tests.control_room.pg import PostgresServer, PostgresUnavailable, throwaway_postgres
from tests.control_room.web_fixtures import clip_file, s3_endpoint, snapshot_file  # noqa: F401 (cr-web)

SECRET = "test-secret-key-0123456789abcdef"
DATABASES = ["sqlite", "postgresql"]


# ---------------------------------------------------------------- PostgreSQL, one server per session
@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    """A throwaway PostgreSQL for the session; each test gets its own database from it."""
    try:
        with throwaway_postgres() as server:
            yield server
    except PostgresUnavailable as exc:
        pytest.skip(str(exc))


# ---------------------------------------------------------------- the app on either database
@pytest.fixture(params=DATABASES)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh, empty database: a SQLite file, or a new database on the session's PostgreSQL."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'control_room.db'}"
    return request.getfixturevalue("postgres").create_database()


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'control_room.db'}"


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(wall=1_795_000_000.0)  # 2026-11-18


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> Settings:
    return Settings(instance_dir=tmp_path, database_url=database_url, secret_key=SECRET,
                    heartbeat_interval_s=60, sample_interval_s=0)


@pytest.fixture(scope="session")
def migrated_sqlite(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SQLite database at the newest schema, migrated once per worker (Alembic: ~0.25 s of CPU a time)."""
    path = tmp_path_factory.mktemp("migrated") / "control_room.db"
    engine = make_engine(f"sqlite:///{path}")
    migrate.upgrade(engine)
    engine.dispose()
    return path


def copy_migrated(template: Path, database_url: str) -> None:
    """A new SQLite database starts as a copy of the migrated one (the PostgreSQL ones copy a template)."""
    path = Path(database_url.removeprefix("sqlite:///"))
    if database_url.startswith("sqlite:///") and not path.exists():
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT, 0o600))  # as control_room.db creates it
        with closing(sqlite3.connect(template)) as src, closing(sqlite3.connect(path)) as dst:
            src.backup(dst)


@pytest.fixture
def app(settings: Settings, clock: ManualClock, migrated_sqlite: Path) -> Iterator[Flask]:
    copy_migrated(migrated_sqlite, settings.resolved_database_url())
    app = create_app(settings, migrate=True, clock=clock)  # the migration finds the schema at its head
    app.config["TESTING"] = True
    yield app
    get_engine(app).dispose()


@pytest.fixture
def engine(app: Flask) -> Engine:
    return get_engine(app)


@dataclass
class LiveServer:
    url: str
    app: Flask | None


class ServerThread(threading.Thread):
    """waitress's own loop run one poll at a time, so stop() can end it cleanly from outside."""

    def __init__(self, app: Flask) -> None:
        super().__init__(name="waitress", daemon=True)
        self.server = waitress.server.create_server(app, host="127.0.0.1", port=0, threads=4)
        self.port = self.server.effective_port
        self._stop_event = threading.Event()

    def run(self) -> None:
        while not self._stop_event.is_set():
            self.server.asyncore.loop(timeout=0.05, map=self.server._map, count=1)
        self.server.task_dispatcher.shutdown()
        for channel in list(self.server._map.values()):
            channel.close()

    def stop(self) -> None:
        self._stop_event.set()
        self.join(timeout=10)


def serve_in_thread(app: Flask) -> ServerThread:
    thread = ServerThread(app)
    thread.start()
    return thread


@pytest.fixture
def live_server(app: Flask) -> Iterator[LiveServer]:
    """The app behind waitress on 127.0.0.1:<free port>, spoken to over real HTTP."""
    thread = serve_in_thread(app)
    try:
        yield LiveServer(f"http://127.0.0.1:{thread.port}", app)
    finally:
        thread.stop()


# ---------------------------------------------------------------- councils, units, users
@dataclass
class MadeUnit:
    unit_id: str
    token: str
    council: str

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


class Factory:
    """Creates councils, units (with their one-time token) and users through control_room.provision."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def council(self, slug: str = "herts", name: str = "Hertfordshire") -> str:
        with session_scope(self.engine) as s:
            if s.scalar(text("SELECT 1 FROM councils WHERE slug = :s"), {"s": slug}) is None:
                provision.create_council(s, slug, name)
        return slug

    def unit(self, unit_id: str = "herts-mcu-001", council: str = "herts") -> MadeUnit:
        self.council(council, council.title())
        with session_scope(self.engine) as s:
            _, token = provision.create_unit(s, unit_id, council)
        return MadeUnit(unit_id, token, council)

    def user(self, username: str = "alice", role: str = "operator", council: str | None = "herts",
             password: str = "correct horse battery") -> User:  # noqa: S107
        if council is not None:
            self.council(council, council.title())
        with session_scope(self.engine) as s:
            return provision.create_user(s, username, role, password, council)


@pytest.fixture
def factory(engine: Engine) -> Factory:
    return Factory(engine)
