"""The disclosure register page: search by force, crime reference and date; CSV export with the ICO
checklist's columns. A council's people see only their council's lines.

Registered by evidence.init_app at /evidence/register.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from flask import Blueprint, Response, abort, g, render_template, request, stream_with_context

from control_room import audit, scope
from control_room.auth import require
from control_room.evidence import register, roles
from control_room.web import common

bp = Blueprint("evidence_register", __name__, url_prefix="/evidence")


def _day(text: str) -> datetime | None:
    try:
        return common.to_utc(datetime.fromisoformat(text)) if text else None
    except ValueError:
        return None


@bp.route("/register")
@require("fleet")
def index() -> Any:
    db = common.db()
    ids = scope.council_ids(g.user)
    if ids is not None:
        ids = [c for c in ids if roles.allowed(db, g.user, "register", c)]
        if not ids:
            abort(403, description="your role may not read the disclosure register")
    a = request.args
    since, until = _day(a.get("since", "")), _day(a.get("until", ""))
    council = a.get("council", type=common.db_int)
    if council is not None and (ids is None or council in ids):
        ids = [council]
    filters = register.Filters(
        council_ids=ids,
        force=a.get("force", "")[:100],
        crime_ref=a.get("crime_ref", "")[:100],
        since=since,
        until=until + timedelta(days=1) if until else None,
    )
    stmt = register.query(filters)
    if a.get("format") == "csv":
        audit.record(
            db,
            g.user,
            "register_export",
            "register",
            "csv",
            {"ip": request.remote_addr, "force": filters.force, "crime_ref": filters.crime_ref},
        )
        db.commit()
        headers = {
            "Content-Disposition": f'attachment; filename="disclosure-register-{common.now():%Y%m%d}.csv"'
        }
        return Response(
            stream_with_context(register.csv_lines(db, stmt)), mimetype="text/csv", headers=headers
        )
    rows = db.scalars(stmt.limit(500)).unique().all()
    councils = {c.id: c.name for c in scope.councils(db, g.user)}
    return render_template(
        "evidence/register.html",
        rows=rows,
        councils=councils,
        args=a,
        values=[register.row_values(r, councils) for r in rows],
        columns=register.CSV_COLUMNS,
    )


@bp.route("/<int:rid>/packages/<int:pid>/custody.json")
@require("fleet")
def custody(rid: int, pid: int) -> Response:
    """The whole custody record of a package, signed (Ed25519, X-Signature-Ed25519, base64)."""
    import base64
    import json

    from control_room.evidence import package
    from control_room.evidence.continuity import full_custody
    from control_room.evidence.models import DisclosureRequest, EvidencePackage
    from control_room.evidence.web import evidence_dir, signing_key

    db = common.db()
    req = db.get(DisclosureRequest, rid)
    ids = scope.council_ids(g.user)
    pkg = db.get(EvidencePackage, pid)
    if req is None or (ids is not None and req.council_id not in ids) or pkg is None or pkg.request_id != rid:
        abort(404)
    roles.require_allowed(db, "register", req.council_id)
    doc = full_custody(db, pkg, package.package_path(evidence_dir(), pkg), common.now())
    body = (json.dumps(doc, indent=1, sort_keys=True) + "\n").encode()
    audit.record(db, g.user, "custody_view", "disclosure", req.reference, {"ip": request.remote_addr})
    db.commit()
    signature = base64.b64encode(signing_key().sign(body)).decode()
    return Response(
        body,
        mimetype="application/json",
        headers={
            "X-Signature-Ed25519": signature,
            "Content-Disposition": f'attachment; filename="{pkg.exhibit_ref}-custody.json"',
        },
    )
