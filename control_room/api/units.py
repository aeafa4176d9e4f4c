"""Unit endpoints: heartbeat intake and event notifications, each authenticated by the unit's
bearer token (stored hashed); answers per docs/protocol.md, nothing stored for a refused request.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, NoReturn, TypeVar

from flask import Blueprint, Response, abort, current_app, g, jsonify, make_response, request
from pydantic import ValidationError
from sqlalchemy import Connection, Row, bindparam, exists, select, text
from sqlalchemy.exc import IntegrityError

from control_room import __version__, audit, clock, ingest, names
from control_room.config import Settings
from control_room.db import begin_soft_commit, get_session
from control_room.errors import EventConflict, Refusal
from control_room.models import Instruction
from control_room.provision import hash_token
from protocol.events import EventNote
from protocol.fields import first_error
from protocol.heartbeat import Heartbeat

log = logging.getLogger(__name__)
bp = Blueprint("unit_api", __name__, url_prefix="/api/v1")
T = TypeVar("T")
M = TypeVar("M", Heartbeat, EventNote)


def _settings() -> Settings:
    return current_app.config["SETTINGS"]


def _now() -> Any:
    return clock.now()


def _iso(ts: Any) -> str:
    return ts.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _refuse(status: int, message: str, **headers: str) -> NoReturn:
    response = make_response(jsonify(error=message), status)
    response.headers.update(headers)
    unit_id = request.view_args.get("unit_id") if request.view_args else None
    log.info("refused %s %s (unit %.64r): %s %s", request.method, request.path, unit_id, status, message)
    abort(response)


@bp.before_request
def _limit_body() -> None:
    limit = _settings().max_body_bytes
    request.max_content_length = limit
    if request.content_length is not None and request.content_length > limit:
        _refuse(413, f"body too large (limit {limit} bytes)")


_PENDING = (exists().where(Instruction.__table__.c.unit_pk == ingest.UNITS.c.id,
                          Instruction.__table__.c.acked_at.is_(None)).label("pending_instructions"))
_BY_TOKEN = select(*(ingest.UNITS.c[name] for name in ingest.UNIT_STATE_COLUMNS), _PENDING).where(
    ingest.UNITS.c.token_hash == bindparam("token_hash"))


def _authenticate(unit_id: str, conn: Connection) -> Row[Any]:
    """The unit owning the bearer token; 401 wrong/unknown/revoked, 403 a token of another unit.

    Returns its row (ingest.UNIT_STATE_COLUMNS, and whether instructions are pending for it) read
    on `conn`, in the caller's transaction."""
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip() or len(token) > 256:
        _refuse(401, "missing or malformed bearer token", **{"WWW-Authenticate": "Bearer"})
    unit = conn.execute(_BY_TOKEN, {"token_hash": hash_token(token.strip())}).first()
    if unit is None:
        _refuse(401, "unknown or wrong token", **{"WWW-Authenticate": "Bearer"})
    if unit.revoked_at is not None:
        _refuse(401, "revoked", **{"WWW-Authenticate": 'Bearer error="invalid_token"'})
    if unit.unit_id != unit_id:
        _refuse(403, "token belongs to another unit")
    g.unit = unit
    return unit


def _checked(check: Callable[[], T]) -> T | Refusal:
    """Run the body checks before any database work, keeping the verdict for after authentication."""
    try:
        return check()
    except Refusal as refusal:
        return refusal


def _accept(verdict: T | Refusal) -> T:
    if isinstance(verdict, Refusal):
        _refuse(verdict.status, verdict.message)
    return verdict


def _json_body() -> dict[str, Any]:
    if not request.is_json:
        raise Refusal(415, "Content-Type must be application/json")
    try:
        body = request.get_json(silent=True)
    except RecursionError:  # json gives up on deep nesting with RecursionError, not ValueError
        raise Refusal(400, "body is nested too deeply") from None
    if body is None:
        raise Refusal(400, "body is not valid JSON")
    if not isinstance(body, dict):
        raise Refusal(400, "body must be a JSON object")
    return body


def _validate(model: type[M], unit_id: str) -> M:
    try:
        parsed = model.model_validate(_json_body())
    except ValidationError as exc:
        raise Refusal(400, first_error(exc)) from None
    if parsed.unit_id is not None and parsed.unit_id != unit_id:
        raise Refusal(400, "unit_id in the body does not match the path")
    return parsed


def _valid_event(unit_id: str) -> EventNote:
    note = _validate(EventNote, unit_id)
    if note.site:
        try:
            names.check_display_name(note.site, "site")
        except names.BadName as exc:
            raise Refusal(400, str(exc)) from None
    prefix = _settings().s3_prefix
    for kind, obj in note.objects:
        if obj is not None and not names.is_safe_key(obj.key, unit_id, prefix):
            where = names.unit_key_prefix(prefix, unit_id)
            raise Refusal(400, f"objects.{kind}.key must be a safe key under {where}")
    if note.state == "clip_uploaded" and note.objects.clip is None:
        raise Refusal(400, "objects.clip is required when state is clip_uploaded")
    return note


@bp.post("/units/<unit_id>/heartbeat")
def heartbeat(unit_id: str) -> Response:
    verdict = _checked(lambda: _validate(Heartbeat, unit_id))  # parsing outside the write transaction
    session = get_session()
    conn = begin_soft_commit(session)
    unit = _authenticate(unit_id, conn)
    hb = _accept(verdict)
    now = _now()
    result = ingest.store_heartbeat(conn, unit, hb, now, _settings())
    session.commit()
    if result.stale is not None:
        log.info("stale heartbeat from %s kept as history: %s", unit_id, result.stale)
    return jsonify(ok=True, server_time=_iso(now), instructions=result.instructions)


@bp.post("/units/<unit_id>/events")
def event(unit_id: str) -> Response:
    verdict = _checked(lambda: _valid_event(unit_id))
    session = get_session()
    unit = _authenticate(unit_id, session.connection())
    note = _accept(verdict)
    for attempt in (1, 2):
        try:
            _, created = ingest.store_event(session, unit, note, _now())
            session.commit()
            return jsonify(ok=True, created=created)
        except EventConflict as exc:
            session.rollback()
            audit.record(session, None, "event_rewrite_refused", "event", note.event_id,
                         {"unit": unit_id, "fields": exc.differences}, actor=f"unit:{unit_id}", at=_now())
            session.commit()
            _refuse(409, str(exc))
        except IntegrityError:  # the same event_id arrived twice at once: update the other's row
            session.rollback()
            if attempt == 2:
                raise
    raise AssertionError("unreachable")


@bp.get("/health")
def health() -> Response:
    """For a load balancer: the process answers and reaches its database."""
    get_session().execute(text("SELECT 1"))
    return jsonify(ok=True, version=__version__)
