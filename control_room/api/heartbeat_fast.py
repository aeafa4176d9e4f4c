"""The heartbeat's hot path on SQLite: a WSGI layer in front of Flask that answers the common case
(a valid heartbeat, a current token, nothing to acknowledge or deliver) on the raw sqlite3 connection.

Everything else goes on, untouched, to the Flask view in control_room.api.units, which answers it as
before (refusals, instructions, PostgreSQL): nothing is written here before such a hand-over. The
record rules are the same code (control_room.ingest: staleness, position, samples); the statements are
SQLAlchemy's own, compiled once for SQLite, with its type conversions. A 200 means committed (WAL,
synchronous=NORMAL as every heartbeat: a process kill loses nothing). Saves Flask's request context
and SQLAlchemy's session and per-statement work: most of a heartbeat's CPU time.
"""

from __future__ import annotations

import json
import logging
import re
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable
from io import BytesIO
from typing import Any

from flask import Flask
from pydantic import ValidationError
from sqlalchemy import Engine, Table, bindparam, event, insert, update

from control_room import ingest
from control_room.api.units import _BY_TOKEN
from control_room.config import Settings
from control_room.db import SQLITE_BUSY_TIMEOUT_MS, sqlite_pragmas, writer_turn
from control_room.provision import hash_token
from protocol.heartbeat import Heartbeat

log = logging.getLogger("control_room.api.units")
PATH = re.compile(r"/api/v1/units/([^/]+)/heartbeat")
StartResponse = Callable[..., Any]
BUSY_TIMEOUT_S = SQLITE_BUSY_TIMEOUT_MS / 1000  # as long as SQLAlchemy's connections wait


class _Statement:
    """One SQLAlchemy statement compiled for SQLite: its text, parameter order and bind conversions."""

    def __init__(self, stmt: Any, engine: Engine, keys: Iterable[str] | None = None) -> None:
        compiled = stmt.compile(dialect=engine.dialect, column_keys=list(keys) if keys is not None else None)
        self.sql = compiled.string
        binds = compiled.binds
        self.order = tuple(compiled.positiontup or ())
        self.convert = {name: binds[name].type.dialect_impl(engine.dialect).bind_processor(engine.dialect)
                        for name in self.order}

    def params(self, values: dict[str, Any]) -> tuple[Any, ...]:
        out = []
        for name in self.order:
            value, convert = values.get(name), self.convert[name]
            out.append(convert(value) if convert is not None and value is not None else value)
        return tuple(out)


class _Row:
    """The unit row of ingest.UNIT_STATE_COLUMNS (+ pending_instructions), converted as SQLAlchemy would."""

    def __init__(self, **values: Any) -> None:
        self.__dict__.update(values)


class FastHeartbeats:
    """The WSGI layer (app.wsgi_app = FastHeartbeats(app, app.wsgi_app)), for SQLite engines only."""

    def __init__(self, app: Flask, engine: Engine, next_app: Callable[..., Any]) -> None:
        self.app, self.engine, self.next_app = app, engine, next_app
        self.settings: Settings = app.config["SETTINGS"]
        self.turn = writer_turn(engine)
        self._conn: sqlite3.Connection | None = None
        self._conn_lock = threading.Lock()
        dialect = engine.dialect
        self.by_token = _Statement(_BY_TOKEN, engine)
        self.result = [col.type.dialect_impl(dialect).result_processor(dialect, None)
                       for col in _BY_TOKEN.selected_columns]
        self.names = [col.key for col in _BY_TOKEN.selected_columns]
        self.insert_sample = _Statement(insert(ingest.SAMPLES), engine, _columns(ingest.SAMPLES))
        self.insert_stale = _Statement(insert(ingest.STALE), engine, _columns(ingest.STALE))
        self._updates: dict[frozenset[str], _Statement] = {}
        self.answered = 0  # heartbeats stored and answered here (tests, diagnostics)
        event.listen(engine, "engine_disposed", self._close)

    # ------------------------------------------------------------------ WSGI
    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        match = PATH.fullmatch(environ.get("PATH_INFO", ""))
        if match is None or environ.get("REQUEST_METHOD") != "POST":
            return self.next_app(environ, start_response)
        body = self._body(environ)
        answer = None if body is None else self._handle(match.group(1), body, environ)
        if answer is None:  # not the common case: Flask answers it (with the body put back)
            return self.next_app(environ, start_response)
        status, payload, headers = answer
        data = (self.app.json.dumps(payload) + "\n").encode()
        start_response(status, [("Content-Type", "application/json"), ("Content-Length", str(len(data))),
                                *headers])
        return [data]

    def _body(self, environ: dict[str, Any]) -> bytes | None:
        """The body, read whole when its length is given and within the limit; None leaves it unread."""
        mimetype = environ.get("CONTENT_TYPE", "").split(";", 1)[0].strip().lower()
        length = environ.get("CONTENT_LENGTH", "")
        if mimetype != "application/json" or not length.isdigit() or "HTTP_TRANSFER_ENCODING" in environ:
            return None
        if int(length) > self.settings.max_body_bytes:
            return None
        body = environ["wsgi.input"].read(int(length))
        environ["wsgi.input"] = BytesIO(body)  # for Flask, if it answers after all
        return body if len(body) == int(length) else None

    # ------------------------------------------------------------------ the heartbeat
    def _handle(self, unit_id: str, body: bytes, environ: dict[str, Any]) -> tuple[str, Any, list] | None:
        hb = _heartbeat(body, unit_id)
        scheme, _, token = environ.get("HTTP_AUTHORIZATION", "").partition(" ")
        if hb is None or scheme.lower() != "bearer" or not token.strip() or len(token) > 256:
            return None
        if hb.acked:
            return None  # acknowledgements: the Flask view (instructions.acknowledge)
        if not self.turn.acquire(BUSY_TIMEOUT_S):
            return None  # the Flask view waits in SQLite's busy handler and answers 503 if need be
        try:
            conn = self._connection()
            try:
                if not _begin_immediate(conn, time.monotonic() + BUSY_TIMEOUT_S):
                    log.warning("database unavailable: its write lock was taken for %.0f s", BUSY_TIMEOUT_S)
                    return ("503 SERVICE UNAVAILABLE", {"error": "database unavailable, retry later"},
                            [("Retry-After", "5")])
                return self._store(conn, unit_id, token.strip(), hb)
            except sqlite3.OperationalError as exc:  # unexpected: the Flask view tries (and answers 503)
                log.info("heartbeat fast path gave way to the Flask view: %s", exc)
                return None
            finally:
                if conn.in_transaction:
                    conn.rollback()
        finally:
            self.turn.release()

    def _store(self, conn: sqlite3.Connection, unit_id: str, token: str,
               hb: Heartbeat) -> tuple[str, Any, list] | None:
        """In the transaction _handle began: the unit's row, the writes, the commit (else rollback)."""
        found = conn.execute(self.by_token.sql, self.by_token.params({"token_hash": hash_token(token)}))
        raw = found.fetchone()
        if raw is None:
            conn.rollback()
            return None
        unit = _Row(**{name: (f(v) if f is not None else v)
                       for name, f, v in zip(self.names, self.result, raw, strict=True)})
        if unit.revoked_at is not None or unit.unit_id != unit_id or unit.pending_instructions:
            conn.rollback()  # refusals, and instructions to deliver: the Flask view
            return None
        now = self.app.extensions["cctv_clock"].now()
        stale = ingest.staleness(unit, hb)
        values: dict[str, Any] = {"last_seen_at": now}
        if stale is not None:
            row = ingest.stale_row(unit.id, hb, now, stale)
            conn.execute(self.insert_stale.sql, self.insert_stale.params(row))
        else:
            values.update(ingest.applied_values(unit, hb, now, self.settings))
            if values.get("last_sample_at") == now:
                sample = ingest.sample_row(unit.id, hb, now)
                conn.execute(self.insert_sample.sql, self.insert_sample.params(sample))
        update_unit = self._update(frozenset(values))
        conn.execute(update_unit.sql, update_unit.params({"unit_pk_": unit.id, **values}))
        conn.commit()
        self.answered += 1
        if stale is not None:
            log.info("stale heartbeat from %s kept as history: %s", unit_id, stale)
        server_time = now.isoformat(timespec="milliseconds").replace("+00:00", "Z")
        return "200 OK", {"ok": True, "server_time": server_time, "instructions": []}, []

    def _update(self, keys: frozenset[str]) -> _Statement:
        statement = self._updates.get(keys)
        if statement is None:
            stmt = update(ingest.UNITS).where(ingest.UNITS.c.id == bindparam("unit_pk_"))
            statement = self._updates[keys] = _Statement(stmt, self.engine, sorted(keys))
        return statement

    # ------------------------------------------------------------------ the connection
    def _connection(self) -> sqlite3.Connection:
        """This process's heartbeat connection: used only while holding the writer turn."""
        with self._conn_lock:
            if self._conn is None:
                cargs, cparams = self.engine.dialect.create_connect_args(self.engine.url)
                conn = sqlite3.connect(*cargs, **{**cparams, "check_same_thread": False,
                                                  "isolation_level": None})
                sqlite_pragmas(conn, None)
                conn.execute("PRAGMA synchronous=NORMAL")  # soft state (control_room.db.begin_soft_commit)
                conn.execute("PRAGMA busy_timeout=0")  # _begin_immediate waits for the write lock itself
                self._conn = conn
            return self._conn

    def _close(self, _engine: Engine) -> None:
        with self._conn_lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None


def _begin_immediate(conn: sqlite3.Connection, deadline: float) -> bool:
    """BEGIN IMMEDIATE, trying again every millisecond while another process holds the write lock.

    SQLite's busy handler sleeps 1, 2, 5, 10, 15, 20, 25 ms... between tries, so a heartbeat that met
    another process's commit (a failed log-in's, durable: an fsync of 5-20 ms here) waited up to
    twice as long as the lock was held, and every heartbeat of this process queued behind it. Once
    begun, the transaction holds the write lock: its statements meet no other lock (WAL)."""
    while True:
        try:
            conn.execute("BEGIN IMMEDIATE")
            return True
        except sqlite3.OperationalError as exc:
            if exc.sqlite_errorcode != sqlite3.SQLITE_BUSY:
                raise
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.001)


def _heartbeat(body: bytes, unit_id: str) -> Heartbeat | None:
    """The body parsed as the Flask view parses it (json, then the model); None if it would refuse it."""
    try:
        data = json.loads(body)
    except (ValueError, RecursionError):
        return None
    if not isinstance(data, dict):
        return None
    try:
        hb = Heartbeat.model_validate(data)
    except ValidationError:
        return None
    if hb.unit_id is not None and hb.unit_id != unit_id:
        return None
    return hb


def _columns(table: Table) -> list[str]:
    return [c.key for c in table.columns if not c.primary_key]


def install(app: Flask, engine: Engine) -> None:
    """Put the fast path in front of the app's WSGI callable when the database is SQLite."""
    if engine.dialect.name == "sqlite":
        app.wsgi_app = FastHeartbeats(app, engine, app.wsgi_app)  # type: ignore[method-assign]
