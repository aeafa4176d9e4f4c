"""Database access: one SQLAlchemy engine per process, one session per request or command.

SQLite (a file, WAL, busy_timeout, foreign keys) on one machine; PostgreSQL via psycopg when the
URL says so. Nothing that matters is kept in process memory, so app processes can be load-balanced.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from flask import Flask, current_app, g
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

from control_room.clock import SYSTEM, Clock

SQLITE_BUSY_TIMEOUT_MS = 10_000
SOFT_COMMIT = "cctv_soft_commit"


def normalise_url(url: str) -> str:
    """postgresql:// and postgres:// mean psycopg 3 (the only PostgreSQL driver installed)."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def is_sqlite(engine: Engine) -> bool:
    return engine.dialect.name == "sqlite"


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    cur.execute("PRAGMA synchronous=FULL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.close()


def _sqlite_begin(conn: Any) -> None:
    soft = conn.get_execution_options().get(SOFT_COMMIT, False)
    conn.exec_driver_sql(f"PRAGMA synchronous={'NORMAL' if soft else 'FULL'}")
    # Take the write lock at BEGIN so two writers wait on busy_timeout instead of failing to upgrade.
    conn.exec_driver_sql("BEGIN IMMEDIATE")


def make_engine(url: str, pool_size: int = 10) -> Engine:
    url = normalise_url(url)
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            _create_private(Path(parsed.database))
        engine = create_engine(url, connect_args={"check_same_thread": False, "isolation_level": None})
        event.listen(engine, "connect", _sqlite_pragmas)
        event.listen(engine, "begin", _sqlite_begin)
        return engine
    return create_engine(url, pool_size=pool_size, max_overflow=pool_size, pool_pre_ping=True)


def _create_private(path: Path) -> None:
    """Create the SQLite file readable by its owner only (it holds password hashes)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists():
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT, 0o600))


@contextmanager
def session_scope(engine: Engine, clock: Clock = SYSTEM) -> Iterator[Session]:
    """A session for a command or a thread: committed on success, rolled back on error."""
    with Session(engine, expire_on_commit=False, info={"clock": clock}) as session:
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise


def begin_soft_commit(session: Session) -> None:
    """Start a transaction whose commit need not wait for the disk: for soft state only (heartbeats,
    superseded a minute later). A process kill loses nothing; a machine crash may forget the last
    moments of heartbeats (SQLite WAL synchronous=NORMAL; PostgreSQL synchronous_commit=off), never
    corrupting anything. Everything else (events, people, audit) commits durably. Must come first.
    """
    if session.in_transaction():
        return
    conn = session.connection(execution_options={SOFT_COMMIT: True})
    if conn.dialect.name == "postgresql":
        conn.exec_driver_sql("SET LOCAL synchronous_commit = off")


def init_app(app: Flask, engine: Engine, clock: Clock = SYSTEM) -> None:
    """Each request's session carries the app's clock (control_room.clock stamps new rows with it)."""
    sessions = sessionmaker(engine, expire_on_commit=False, info={"clock": clock})
    app.extensions["cctv_db"] = {"engine": engine, "sessions": sessions}
    app.teardown_appcontext(_close_session)


def get_engine(app: Flask | None = None) -> Engine:
    return (app or current_app).extensions["cctv_db"]["engine"]


def get_session() -> Session:
    """The request's session (created on first use, closed at teardown; commit explicitly)."""
    if "db_session" not in g:
        g.db_session = current_app.extensions["cctv_db"]["sessions"]()
    return g.db_session


def _close_session(_exc: BaseException | None) -> None:
    session = g.pop("db_session", None)
    if session is not None:
        session.rollback()
        session.close()
