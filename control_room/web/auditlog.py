"""Audit log page for admins: who viewed or downloaded which footage, logged in, deployed or moved units.

A council's admin sees what their council's people did and what anyone (a partnership admin) did to
their council's events, units and sites; a partnership-wide admin sees everyone.
"""

from __future__ import annotations

from flask import Blueprint, g, render_template, request
from sqlalchemy import ColumnElement, String, and_, cast, or_, select

from control_room.auth import require
from control_room.evidence.models import DisclosureRequest
from control_room.models import AuditLog, Event, Site, Unit, User
from control_room.web import common

bp = Blueprint("auditlog", __name__)

PAGE_SIZE = 200


@bp.route("/audit")
@require("admin")
def index() -> str:
    action = request.args.get("action", "")[:64]
    username = request.args.get("user", "")[:64]
    item = request.args.get("item", "")[:128]
    before = request.args.get("before", type=common.db_int)
    stmt = select(AuditLog).order_by(AuditLog.id.desc()).limit(PAGE_SIZE)
    if not g.user.partnership_wide:
        stmt = stmt.where(_council_rows(g.user.council_id))
    if action:
        stmt = stmt.where(AuditLog.action == action)
    if username:
        stmt = stmt.where(AuditLog.username == username)
    if item:
        stmt = stmt.where(AuditLog.item_id == item)
    if before is not None:
        stmt = stmt.where(AuditLog.id < before)
    rows = common.db().scalars(stmt).all()
    older = rows[-1].id if len(rows) == PAGE_SIZE else None
    return render_template(
        "auditlog/index.html", rows=rows, action=action, username=username, item=item, older=older
    )


def _council_rows(council_id: int) -> ColumnElement[bool]:
    """Rows by the council's people, or about the council's events, units or sites (by anyone)."""
    return or_(
        AuditLog.user_id.in_(select(User.id).where(User.council_id == council_id)),
        and_(AuditLog.item_type == "user",  # e.g. failed log-ins with the name of one of their people
             AuditLog.item_id.in_(select(User.username).where(User.council_id == council_id))),
        and_(AuditLog.item_type == "event",
             AuditLog.item_id.in_(select(Event.event_id).where(Event.council_id == council_id))),
        and_(AuditLog.item_type == "unit",
             AuditLog.item_id.in_(select(Unit.unit_id).where(Unit.council_id == council_id))),
        and_(AuditLog.item_type == "site",
             AuditLog.item_id.in_(select(cast(Site.id, String)).where(Site.council_id == council_id))),
        and_(AuditLog.item_type == "disclosure",  # share-link attempts by police recipients (no user)
             AuditLog.item_id.in_(select(DisclosureRequest.reference)
                                  .where(DisclosureRequest.council_id == council_id))),
    )
