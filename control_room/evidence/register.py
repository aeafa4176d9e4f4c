"""The disclosure register (ICO): one row per request, decision, package, share, delivery, download,
refusal and revocation; searchable by council, force, crime reference and date, exportable as CSV.

`note()` adds the register row and the matching audit_log row in the caller's transaction.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Select, select
from sqlalchemy.orm import Session, joinedload

from control_room import audit
from control_room.evidence.models import DisclosureRequest, RegisterEntry
from control_room.models import Council, User
from control_room.web.common import local_time

CSV_COLUMNS = [
    "time_utc",
    "time_uk",
    "council",
    "request",
    "crime_reference",
    "action",
    "outcome",
    "requesting_officer",
    "force",
    "recipient_name",
    "recipient_organisation",
    "lawful_basis",
    "reason",
    "footage",
    "by",
    "ip",
    "detail",
]


def note(
    db: Session,
    council_id: int,
    request: DisclosureRequest | None,
    action: str,
    user: User | None,
    at: datetime,
    *,
    outcome: str = "ok",
    recipient: tuple[str, str] = ("", ""),
    ip: str = "",
    detail: dict[str, Any] | None = None,
    actor: str = "",
) -> RegisterEntry:
    """One register line plus its audit_log row (every attempt, allowed or refused, with the IP)."""
    detail = dict(detail or {})
    row = RegisterEntry(
        at=at,
        council_id=council_id,
        request_id=request.id if request else None,
        action=action,
        outcome=outcome,
        actor=actor or (user.username if user else ""),
        recipient_name=recipient[0],
        recipient_org=recipient[1],
        ip=ip or "",
        detail=detail,
    )
    db.add(row)
    audit.record(
        db,
        user,
        f"evidence_{action}" if outcome == "ok" else f"evidence_{action}_refused",
        "disclosure",
        request.reference if request else "-",
        {**detail, "ip": ip, "outcome": outcome},
        at=at,
    )
    return row


@dataclass(frozen=True)
class Filters:
    council_ids: list[int] | None  # None = every council
    force: str = ""
    crime_ref: str = ""
    since: datetime | None = None
    until: datetime | None = None


def query(f: Filters) -> Select[Any]:
    stmt = (
        select(RegisterEntry)
        .outerjoin(DisclosureRequest, RegisterEntry.request_id == DisclosureRequest.id)
        .options(joinedload(RegisterEntry.request))
        .order_by(RegisterEntry.at.desc(), RegisterEntry.id.desc())
    )
    if f.council_ids is not None:
        stmt = stmt.where(RegisterEntry.council_id.in_(f.council_ids or [-1]))
    if f.force:
        stmt = stmt.where(DisclosureRequest.officer_force.ilike(f"%{_like(f.force)}%", escape="\\"))
    if f.crime_ref:
        stmt = stmt.where(DisclosureRequest.crime_ref.ilike(f"%{_like(f.crime_ref)}%", escape="\\"))
    if f.since is not None:
        stmt = stmt.where(RegisterEntry.at >= f.since)
    if f.until is not None:
        stmt = stmt.where(RegisterEntry.at < f.until)
    return stmt


def _like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def footage_text(req: DisclosureRequest | None) -> str:
    if req is None:
        return ""
    if req.range_start is not None and req.unit is not None:
        end = req.range_end.isoformat() if req.range_end else ""
        return f"{req.unit.unit_id} {req.range_start.isoformat()} to {end}"
    return " ".join(str(e) for e in req.event_ids or [])


def row_values(row: RegisterEntry, councils: dict[int, str]) -> list[str]:
    req = row.request
    return [
        row.at.isoformat(),
        local_time(row.at),
        councils.get(row.council_id, str(row.council_id)),
        req.reference if req else "",
        req.crime_ref if req else "",
        row.action,
        row.outcome,
        f"{req.officer_name} ({req.officer_collar})" if req else "",
        req.officer_force if req else "",
        row.recipient_name,
        row.recipient_org,
        req.basis_text if req else "",
        (row.detail or {}).get("reason", req.reason if req else ""),
        footage_text(req),
        row.actor,
        row.ip,
        "; ".join(f"{k}={v}" for k, v in sorted((row.detail or {}).items()) if k != "reason"),
    ]


def _safe_cell(value: str) -> str:
    """No spreadsheet formulas: a cell starting with = + - @ is prefixed with a quote (CSV injection)."""
    return "'" + value if value[:1] in ("=", "+", "-", "@", "\t", "\r") else value


def csv_lines(db: Session, stmt: Select[Any]) -> Iterator[str]:
    councils = {c.id: c.name for c in db.scalars(select(Council))}
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(CSV_COLUMNS)
    yield buf.getvalue()
    try:
        for row in db.scalars(stmt).unique():
            buf.seek(0)
            buf.truncate()
            writer.writerow([_safe_cell(v) for v in row_values(row, councils)])
            yield buf.getvalue()
    finally:
        db.rollback()  # end the read (SQLite takes the write lock at BEGIN) before the response closes
