"""Database access: one SQLAlchemy engine per process, one session per request or command.

SQLite (a file, WAL, busy_timeout, foreign keys) on one machine; PostgreSQL via psycopg when the
URL says so. Nothing that matters is kept in process memory, so app processes can be load-balanced.
"""

from __future__ import annotations

import os
import threading
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from flask import Flask, current_app, g
from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

from control_room.clock import SYSTEM, Clock

SQLITE_BUSY_TIMEOUT_MS = 10_000
SOFT_COMMIT = "cctv_soft_commit"
READ_ONLY = "cctv_read_only"


def normalise_url(url: str) -> str:
    """postgresql:// and postgres:// mean psycopg 3 (the only PostgreSQL driver installed)."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def is_sqlite(engine: Engine) -> bool:
    return engine.dialect.name == "sqlite"


def sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    cur.execute("PRAGMA synchronous=FULL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.close()


class _WriterTurn:
    """One SQLite transaction at a time per engine (process), queued on a Python lock.

    Every transaction starts with BEGIN IMMEDIATE (the database's write lock). A second connection
    of the same process that found it taken would wait in SQLite's busy handler, which sleeps in
    steps of up to 100 ms and stretched heartbeat latency to seconds under load; waiting here wakes
    the next thread the moment the lock is free. The turn is held from BEGIN until the connection
    goes back to the pool (sessions give it back at commit or rollback). Other processes still meet
    at SQLite's lock (busy_timeout). A thread that waits longer than busy_timeout goes on to SQLite,
    which answers as it did before ("database is locked"): this adds no new way to hang.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()

    def begin(self, conn: Any) -> None:
        options = conn.get_execution_options()
        dbapi_conn = conn.connection.driver_connection  # the sqlite3 connection: no per-statement overhead
        if options.get(READ_ONLY, False):  # begin_read_only: a snapshot, no write lock, no turn
            dbapi_conn.execute("BEGIN DEFERRED")
            return
        info = conn.connection.info
        if not info.get(_HOLDS_TURN):
            info[_HOLDS_TURN] = self._lock.acquire(timeout=SQLITE_BUSY_TIMEOUT_MS / 1000)
        soft = options.get(SOFT_COMMIT, False)
        dbapi_conn.execute(f"PRAGMA synchronous={'NORMAL' if soft else 'FULL'}")
        # Take the write lock at BEGIN so two writers wait instead of failing to upgrade a read lock.
        dbapi_conn.execute("BEGIN IMMEDIATE")

    def taken(self) -> bool:
        return self._lock.locked()

    def acquire(self, timeout_s: float) -> bool:
        """Take the turn for work outside SQLAlchemy (control_room.api.heartbeat_fast); then release()."""
        return self._lock.acquire(timeout=timeout_s)

    def release(self) -> None:
        self._lock.release()

    def checkin(self, _dbapi_conn: Any, record: Any) -> None:
        if record is not None and record.info.pop(_HOLDS_TURN, False):
            self._lock.release()


_HOLDS_TURN = "cctv_writer_turn"
_TURNS: weakref.WeakKeyDictionary[Engine, _WriterTurn] = weakref.WeakKeyDictionary()


def writer_turn(engine: Engine) -> _WriterTurn:
    """The SQLite engine's writer turn (KeyError for other engines)."""
    return _TURNS[engine]


def writer_turn_taken(engine: Engine) -> bool:
    """Whether a transaction of this process holds the SQLite engine's writer turn (diagnostics, tests)."""
    turn = _TURNS.get(engine)
    return turn is not None and turn.taken()


def make_engine(url: str, pool_size: int = 10) -> Engine:
    url = normalise_url(url)
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            _create_private(Path(parsed.database))
        engine = create_engine(url, connect_args={"check_same_thread": False, "isolation_level": None})
        turn = _TURNS[engine] = _WriterTurn()
        event.listen(engine, "connect", sqlite_pragmas)
        event.listen(engine, "begin", turn.begin)
        event.listen(engine, "checkin", turn.checkin)
        event.listen(engine, "invalidate", lambda dbapi_conn, record, _exc: turn.checkin(dbapi_conn, record))
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


def begin_soft_commit(session: Session) -> Connection:
    """Start a transaction whose commit need not wait for the disk: for soft state only (heartbeats,
    superseded a minute later). A process kill loses nothing; a machine crash may forget the last
    moments of heartbeats (SQLite WAL synchronous=NORMAL; PostgreSQL synchronous_commit=off), never
    corrupting anything. Everything else (events, people, audit) commits durably. Must come first.
    Returns the transaction's connection (for SQL Core statements in it).
    """
    if session.in_transaction():
        return session.connection()
    conn = session.connection(execution_options={SOFT_COMMIT: True})
    if conn.dialect.name == "postgresql":
        conn.exec_driver_sql("SET LOCAL synchronous_commit = off")
    return conn


def begin_read_only(session: Session) -> None:
    """Start a transaction that only reads (SQLite: BEGIN DEFERRED, so it holds no write lock and
    never delays a unit's heartbeat; in WAL mode it reads a snapshot). The caller must end it
    (rollback) before writing anything: a write in it could fail with "database is locked".
    For reads on a path strangers can drive at will (the log-in form). Must come first."""
    if not session.in_transaction():
        session.connection(execution_options={READ_ONLY: True})


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
