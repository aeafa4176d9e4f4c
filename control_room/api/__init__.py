"""The unit API (docs/protocol.md): /api/v1, bearer tokens per unit, JSON in and out.

`init_app(app)` registers the blueprint and JSON error answers for every /api/ path.
"""

from __future__ import annotations

import logging

from flask import Flask, Request, Response, jsonify, request
from flask.sessions import SecureCookieSessionInterface, SessionMixin
from sqlalchemy.exc import OperationalError
from werkzeug.exceptions import HTTPException

from control_room.api import heartbeat_fast
from control_room.api.units import bp
from control_room.db import get_engine

log = logging.getLogger(__name__)


class _NoCookieSessionForUnits(SecureCookieSessionInterface):
    """Units authenticate with bearer tokens, never cookies: /api/ requests get the null session
    (no signed cookie read or written), which saves every heartbeat a signature check."""

    def open_session(self, app: Flask, request: Request) -> SessionMixin | None:
        if request.path.startswith("/api/"):
            return self.make_null_session(app)
        return super().open_session(app, request)


def init_app(app: Flask) -> None:
    app.session_interface = _NoCookieSessionForUnits()
    app.register_blueprint(bp)
    app.register_error_handler(HTTPException, _http_error)
    app.register_error_handler(OperationalError, _database_unavailable)
    heartbeat_fast.install(app, get_engine(app))  # SQLite: the common heartbeat without Flask's overhead


def _http_error(exc: HTTPException) -> HTTPException | tuple[Response, int]:
    if not request.path.startswith("/api/"):
        return exc
    message = {413: "body too large", 404: "not found", 405: "method not allowed"}.get(
        exc.code or 500, (exc.description or exc.name).rstrip("."))
    return jsonify(error=message), exc.code or 500


def _database_unavailable(exc: OperationalError) -> tuple[Response, int, dict[str, str]]:
    """A locked or unreachable database is passing: tell the unit to retry, never crash."""
    log.warning("database unavailable: %s", type(exc.orig).__name__)
    return jsonify(error="database unavailable, retry later"), 503, {"Retry-After": "5"}
