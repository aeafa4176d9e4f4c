"""Disclosure requests: record a police request from its form, approve (fetching footage from the unit
by upload_range when asked by time range) or refuse it. Bad input is one clear RequestError, nothing stored.

Called by the evidence web views and tests; every step goes in the register (control_room.evidence.register).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from control_room import instructions
from control_room.errors import ControlRoomError
from control_room.evidence import register
from control_room.evidence.models import DisclosureRequest, LawfulBasis, RequestState
from control_room.models import Event, Unit, User

EMAIL_RE = re.compile(r"^[^@\s<>\"']{1,64}@[A-Za-z0-9.-]{1,253}\.[A-Za-z]{2,}$")
INSTRUCTION_MAX = timedelta(hours=6)  # control_room.instructions refuses longer upload ranges


class RequestError(ControlRoomError, ValueError):
    """A request that cannot be recorded or decided as given; the message names the problem."""


@dataclass
class RequestForm:
    officer_name: str = ""
    officer_force: str = ""
    officer_collar: str = ""
    officer_email: str = ""
    authorising_name: str = ""
    authorising_rank: str = ""
    crime_ref: str = ""
    lawful_basis: str = ""
    lawful_basis_other: str = ""
    reason: str = ""
    unit_id: str = ""
    range_start: datetime | None = None
    range_end: datetime | None = None
    event_ids: list[str] = field(default_factory=list)


def _text(value: str, name: str, limit: int, required: bool = True) -> str:
    value = (value or "").strip()
    if required and not value:
        raise RequestError(f"{name} is required")
    if len(value) > limit:
        raise RequestError(f"{name} is longer than {limit} characters")
    if any(ord(c) < 32 and c not in "\n\t" for c in value):
        raise RequestError(f"{name} contains control characters")
    return value


def _unit(db: Session, unit_id: str, council_ids: list[int] | None) -> Unit:
    unit = db.scalar(select(Unit).where(Unit.unit_id == unit_id))
    if unit is None or (council_ids is not None and unit.council_id not in council_ids):
        raise RequestError(f"unknown unit {unit_id!r}")  # another council's unit reads as unknown
    return unit


def validate(
    db: Session, form: RequestForm, council_ids: list[int] | None, now: datetime, max_range: timedelta
) -> dict[str, Any]:
    """The request's column values, or RequestError naming the first problem."""
    values: dict[str, Any] = {
        "officer_name": _text(form.officer_name, "requesting officer's name", 200),
        "officer_force": _text(form.officer_force, "force", 200),
        "officer_collar": _text(form.officer_collar, "collar number", 32),
        "officer_email": _text(form.officer_email, "officer's email", 254),
        "authorising_name": _text(form.authorising_name, "authorising officer", 200),
        "authorising_rank": _text(form.authorising_rank, "authorising officer's rank", 64),
        "crime_ref": _text(form.crime_ref, "crime or incident reference", 100),
        "reason": _text(form.reason, "reason", 4000),
    }
    if not EMAIL_RE.match(values["officer_email"]):
        raise RequestError("officer's email is not an email address")
    try:
        basis = LawfulBasis((form.lawful_basis or "").strip())
    except ValueError:
        raise RequestError(
            "lawful basis is required (one of: " + ", ".join(b.value for b in LawfulBasis) + ")"
        ) from None
    values["lawful_basis"] = basis
    values["lawful_basis_other"] = _text(
        form.lawful_basis_other, "lawful basis text", 1000, required=basis == LawfulBasis.OTHER
    )
    events = [e.strip() for e in form.event_ids if e.strip()]
    if form.range_start is not None or form.range_end is not None or not events:
        values.update(_range(db, form, council_ids, now, max_range))
        values["event_ids"] = []
    else:
        values.update(_events(db, events, council_ids))
    return values


def _range(
    db: Session, form: RequestForm, council_ids: list[int] | None, now: datetime, max_range: timedelta
) -> dict[str, Any]:
    if not form.unit_id.strip():
        raise RequestError("a unit and a time range, or chosen events, are required")
    unit = _unit(db, form.unit_id.strip(), council_ids)
    start, end = form.range_start, form.range_end
    if start is None or end is None:
        raise RequestError("a time range needs both a start and an end")
    if start.tzinfo is None or end.tzinfo is None:
        raise RequestError("range times must carry a time zone")
    if end <= start:
        raise RequestError("the range ends before it starts")
    if end > now:
        raise RequestError("the range reaches into the future")
    if end - start > max_range:
        raise RequestError(f"the range is longer than the maximum of {max_range.total_seconds() / 3600:g} h")
    return {"unit_pk": unit.id, "council_id": unit.council_id, "range_start": start, "range_end": end}


def _events(db: Session, event_ids: list[str], council_ids: list[int] | None) -> dict[str, Any]:
    if len(event_ids) > 200:
        raise RequestError("more than 200 events in one request")
    rows = db.scalars(select(Event).where(Event.event_id.in_(event_ids))).all()
    found = {e.event_id: e for e in rows if council_ids is None or e.council_id in council_ids}
    missing = [e for e in event_ids if e not in found]
    if missing:
        raise RequestError(f"unknown event {missing[0]!r}")
    councils = {e.council_id for e in found.values()}
    units = {e.unit_pk for e in found.values()}
    if len(councils) != 1:
        raise RequestError("the chosen events belong to more than one council")
    return {
        "council_id": councils.pop(),
        "unit_pk": units.pop() if len(units) == 1 else None,
        "event_ids": sorted(set(event_ids)),
    }


def create(
    db: Session,
    form: RequestForm,
    user: User,
    now: datetime,
    max_range: timedelta,
    council_ids: list[int] | None,
    ip: str = "",
) -> DisclosureRequest:
    """Record the request (validated first: a refusal stores nothing); the caller commits."""
    values = validate(db, form, council_ids, now, max_range)
    req = DisclosureRequest(created_at=now, created_by_id=user.id, reference="pending", **values)
    db.add(req)
    db.flush()
    req.reference = f"DR-{now:%Y}-{req.id:05d}"
    register.note(
        db,
        req.council_id,
        req,
        "request_recorded",
        user,
        now,
        ip=ip,
        recipient=(req.officer_name, req.officer_force),
        detail={"reason": req.reason},
    )
    return req


def approve(
    db: Session, req: DisclosureRequest, user: User, now: datetime, note: str = "", ip: str = ""
) -> list[str]:
    """Approve: a time range not yet central is asked of the unit (upload_range, <= 6 h each)."""
    if req.state != RequestState.RECEIVED:
        raise RequestError(f"request {req.reference} is already {req.state.value}")
    ids: list[str] = []
    if req.range_start is not None and req.range_end is not None and req.unit is not None:
        start = req.range_start
        while start < req.range_end:
            end = min(start + INSTRUCTION_MAX, req.range_end)
            ins = instructions.request_upload_range(db, req.unit, start, end, user)
            ids.append(ins.instruction_id)
            start = end
    req.instruction_ids = ids
    req.state = RequestState.APPROVED
    req.decided_at, req.decided_by_id, req.decision_reason = now, user.id, note.strip()[:4000]
    register.note(
        db,
        req.council_id,
        req,
        "approved",
        user,
        now,
        ip=ip,
        recipient=(req.officer_name, req.officer_force),
        detail={"reason": req.decision_reason or req.reason, "upload_range": len(ids)},
    )
    return ids


def refuse(db: Session, req: DisclosureRequest, user: User, now: datetime, reason: str, ip: str = "") -> None:
    reason = _text(reason, "refusal reason", 4000)
    if req.state != RequestState.RECEIVED:
        raise RequestError(f"request {req.reference} is already {req.state.value}")
    req.state = RequestState.REFUSED
    req.decided_at, req.decided_by_id, req.decision_reason = now, user.id, reason
    register.note(
        db,
        req.council_id,
        req,
        "refused",
        user,
        now,
        ip=ip,
        recipient=(req.officer_name, req.officer_force),
        detail={"reason": reason},
    )
