"""Instructions for units (docs/protocol.md): queued by people or tools, carried in heartbeat
responses until the unit acknowledges them in a later heartbeat.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from pydantic import ValidationError
from sqlalchemy import Connection, bindparam, func, literal, select, update
from sqlalchemy.orm import Session

from control_room import clock
from control_room.errors import InstructionError
from control_room.models import Instruction, InstructionType, Unit, User
from protocol.fields import first_error
from protocol.instructions import ADAPTER, MAX_INSTRUCTIONS
from protocol.times import format_utc

__all__ = ["InstructionError", "acknowledge", "deliver", "queue", "request_upload_range"]

MAX_PER_RESPONSE = MAX_INSTRUCTIONS
TABLE = Instruction.__table__
_PENDING = (select(TABLE.c.id, TABLE.c.instruction_id, TABLE.c.type, TABLE.c.params)
            .where(TABLE.c.unit_pk == bindparam("unit_pk_"), TABLE.c.acked_at.is_(None))
            .order_by(TABLE.c.id)
            .limit(MAX_PER_RESPONSE))


def queue(session: Session, unit: Unit, kind: InstructionType, params: dict[str, Any] | None = None,
          user: User | None = None) -> Instruction:
    row = Instruction(instruction_id=uuid.uuid4().hex, unit_pk=unit.id, type=kind, params=params or {},
                      created_by_id=user.id if user else None)
    try:  # never queue what the unit would refuse (protocol.instructions)
        ADAPTER.validate_python(row.to_wire())
    except ValidationError as err:
        raise InstructionError(first_error(err)) from None
    session.add(row)
    session.flush()
    return row


def request_upload_range(session: Session, unit: Unit, start: datetime, end: datetime,
                         user: User | None = None) -> Instruction:
    """Ask a unit for the continuous footage of [start, end] (UTC), ahead of other uploads."""
    if start.tzinfo is None or end.tzinfo is None:
        raise InstructionError("upload range times must be timezone-aware")
    if end <= start:
        raise InstructionError("upload range end must be after its start")
    if (end - start).total_seconds() > 6 * 3600:
        raise InstructionError("upload range is longer than 6 hours")
    params = {"start": format_utc(start), "end": format_utc(end), "priority": "high"}
    return queue(session, unit, InstructionType.UPLOAD_RANGE, params, user)


def _connection(db: Session | Connection) -> Connection:
    """The connection of `db`'s transaction (a session is flushed first: its queued rows count)."""
    if isinstance(db, Session):
        db.flush()
        return db.connection()
    return db


def acknowledge(db: Session | Connection, unit: Any, ids: list[str], now: datetime | None = None) -> int:
    """Mark the unit's own instructions done; ids of other units or unknown ids are ignored.

    `unit` is anything with the unit's primary key as `.id` (a Unit, or a row of its columns)."""
    if not ids:
        return 0
    now = now or clock.now(db if isinstance(db, Session) else None)
    result = _connection(db).execute(
        update(TABLE)
        .where(TABLE.c.unit_pk == unit.id, TABLE.c.instruction_id.in_(ids), TABLE.c.acked_at.is_(None))
        .values(acked_at=now)
    )
    return int(getattr(result, "rowcount", 0) or 0)


def deliver(db: Session | Connection, unit: Any, now: datetime | None = None) -> list[dict[str, Any]]:
    """The pending instructions for the unit, oldest first, as the wire form; counts delivery.

    SQL Core on the transaction's connection (every heartbeat asks): one indexed SELECT, and one
    UPDATE only when something is pending. ORM Instruction objects already loaded in a session are
    not refreshed by it."""
    conn = _connection(db)
    rows = conn.execute(_PENDING, {"unit_pk_": unit.id}).all()
    if not rows:
        return []
    now = now or clock.now(db if isinstance(db, Session) else None)
    ids = [row.id for row in rows]
    first = TABLE.c.first_delivered_at
    conn.execute(update(TABLE).where(TABLE.c.id.in_(ids)).values(
        delivery_count=TABLE.c.delivery_count + 1,
        first_delivered_at=func.coalesce(first, literal(now, first.type))))
    return [{"id": row.instruction_id, "type": InstructionType(row.type).value, **(row.params or {})}
            for row in rows]
