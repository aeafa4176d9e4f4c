"""Instructions for units (docs/protocol.md): queued by people or tools, carried in heartbeat
responses until the unit acknowledges them in a later heartbeat.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from pydantic import ValidationError
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from control_room import clock
from control_room.errors import InstructionError
from control_room.models import Instruction, InstructionType, Unit, User
from protocol.fields import first_error
from protocol.instructions import ADAPTER, MAX_INSTRUCTIONS
from protocol.times import format_utc

__all__ = ["InstructionError", "acknowledge", "deliver", "queue", "request_upload_range"]

MAX_PER_RESPONSE = MAX_INSTRUCTIONS




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


def acknowledge(session: Session, unit: Unit, ids: list[str], now: datetime | None = None) -> int:
    """Mark the unit's own instructions done; ids of other units or unknown ids are ignored."""
    if not ids:
        return 0
    result = session.execute(
        update(Instruction)
        .where(Instruction.unit_pk == unit.id, Instruction.instruction_id.in_(ids),
               Instruction.acked_at.is_(None))
        .values(acked_at=now or clock.now(session))
    )
    return int(getattr(result, "rowcount", 0) or 0)


def deliver(session: Session, unit: Unit, now: datetime | None = None) -> list[dict[str, Any]]:
    """The pending instructions for the unit, oldest first, as the wire form; counts delivery."""
    rows = session.scalars(
        select(Instruction)
        .where(Instruction.unit_pk == unit.id, Instruction.acked_at.is_(None))
        .order_by(Instruction.id)
        .limit(MAX_PER_RESPONSE)
    ).all()
    now = now or clock.now(session)
    for row in rows:
        row.delivery_count += 1
        if row.first_delivered_at is None:
            row.first_delivered_at = now
    return [row.to_wire() for row in rows]
