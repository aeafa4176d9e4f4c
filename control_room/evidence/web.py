"""Staff pages of the evidence area: disclosure requests, decisions, packages, share links, pushes to a
police store, holds. Council-scoped like every page; each action is checked against evidence.roles.

Registered by evidence.init_app under /evidence; the recipient's pages are in evidence.web_share.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from flask import (
    Blueprint,
    Response,
    abort,
    flash,
    g,
    redirect,
    render_template,
    request,
    url_for,
)
from sqlalchemy import select

from control_room import scope
from control_room.auth import require
from control_room.evidence import disclosure, package, roles, signing, sources
from control_room.evidence.models import (
    LAWFUL_BASIS_TEXT,
    Delivery,
    DisclosureRequest,
    EvidenceHold,
    EvidencePackage,
    PoliceStore,
    RequestState,
    ShareLink,
)
from control_room.evidence.register import note
from control_room.models import Unit
from control_room.web import common
from control_room.web.footage import s3_client

bp = Blueprint("evidence", __name__, url_prefix="/evidence")


def evidence_dir() -> Path:
    s = common.settings()
    return s.evidence_dir or s.instance_dir / "evidence"


def signing_key() -> Any:
    s = common.settings()
    return signing.load_or_create_key(
        s.evidence_signing_key_file or s.instance_dir / "evidence_signing_key.pem"
    )


def _ip() -> str:
    return request.remote_addr or ""


def _request_or_404(rid: int) -> DisclosureRequest:
    req = common.db().get(DisclosureRequest, rid)
    ids = scope.council_ids(g.user)
    if req is None or (ids is not None and req.council_id not in ids):
        abort(404)
    return req


def _may(permission: str, council_id: int | None) -> bool:
    return roles.allowed(common.db(), g.user, permission, council_id)


def _parse_time(text: str) -> datetime | None:
    text = (text or "").strip()
    if not text:
        return None
    try:
        value = datetime.fromisoformat(text)  # Python 3.11 reads "Z"; naive form input is UK time
    except ValueError:
        raise disclosure.RequestError(f"time {text[:40]!r} is not a date and time") from None
    utc = common.to_utc(value)
    if utc is None:
        raise disclosure.RequestError(f"time {text[:40]!r} is out of range")
    return utc


@bp.route("/")
@require("fleet")
def index() -> str:
    stmt = select(DisclosureRequest).order_by(DisclosureRequest.id.desc()).limit(200)
    ids = scope.council_ids(g.user)
    if ids is not None:
        stmt = stmt.where(DisclosureRequest.council_id.in_(ids or [-1]))
    rows = common.db().scalars(stmt).all()
    return render_template("evidence/index.html", rows=rows, may_record=_may_any("record"))


def _may_any(permission: str) -> bool:
    if g.user.partnership_wide:
        return True
    return g.user.council_id is not None and _may(permission, g.user.council_id)


@bp.route("/new", methods=["GET", "POST"])
@require("fleet")
def new() -> Any:
    if not _may_any("record"):
        abort(403, description="your role may not record disclosure requests")
    units = common.db().scalars(scope.visible(common.db(), Unit, g.user).order_by(Unit.unit_id)).all()
    if request.method == "GET":
        return render_template("evidence/new.html", units=units, bases=LAWFUL_BASIS_TEXT, form={})
    f = request.form
    db = common.db()
    try:
        form = disclosure.RequestForm(
            officer_name=f.get("officer_name", ""),
            officer_force=f.get("officer_force", ""),
            officer_collar=f.get("officer_collar", ""),
            officer_email=f.get("officer_email", ""),
            authorising_name=f.get("authorising_name", ""),
            authorising_rank=f.get("authorising_rank", ""),
            crime_ref=f.get("crime_ref", ""),
            lawful_basis=f.get("lawful_basis", ""),
            lawful_basis_other=f.get("lawful_basis_other", ""),
            reason=f.get("reason", ""),
            unit_id=f.get("unit_id", ""),
            range_start=_parse_time(f.get("range_start", "")),
            range_end=_parse_time(f.get("range_end", "")),
            event_ids=[e for e in f.get("event_ids", "").replace(",", " ").split() if e],
        )
        max_range = timedelta(hours=common.settings().evidence_max_range_h)
        req = disclosure.create(db, form, g.user, common.now(), max_range, scope.council_ids(g.user), _ip())
        if not _may("record", req.council_id):
            abort(403, description="your role may not record requests for this council")
    except disclosure.RequestError as err:
        db.rollback()
        return render_template(
            "evidence/new.html", units=units, bases=LAWFUL_BASIS_TEXT, form=f, error=str(err)
        ), 400
    db.commit()
    flash(f"Request {req.reference} recorded.", "info")
    return redirect(url_for("evidence.show", rid=req.id))


@bp.route("/<int:rid>")
@require("fleet")
def show(rid: int) -> str:
    req = _request_or_404(rid)
    db = common.db()
    refs = sources.records(db, req, common.settings().s3_prefix)
    prog = [sources.progress(s3_client(), common.settings().s3_bucket, r) for r in refs] if refs else []
    pkg_ids = [p.id for p in req.packages]
    links = db.scalars(
        select(ShareLink).where(ShareLink.package_id.in_(pkg_ids or [-1])).order_by(ShareLink.id)
    ).all()
    deliveries = db.scalars(
        select(Delivery).where(Delivery.package_id.in_(pkg_ids or [-1])).order_by(Delivery.id)
    ).all()
    hold_rows = db.scalars(select(EvidenceHold).where(EvidenceHold.request_id == req.id)).all()
    stores = db.scalars(
        select(PoliceStore)
        .where(PoliceStore.active.is_(True))
        .where((PoliceStore.council_id.is_(None)) | (PoliceStore.council_id == req.council_id))
        .order_by(PoliceStore.name)
    ).all()
    perms = {p: _may(p, req.council_id) for p in roles.PERMISSIONS}
    return render_template(
        "evidence/show.html",
        req=req,
        progress=prog,
        links=links,
        deliveries=deliveries,
        holds=hold_rows,
        stores=stores,
        perms=perms,
        now=common.now(),
        share_days=common.settings().share_default_days,
        share_max=common.settings().share_max_days,
        review=(common.now() + timedelta(days=90)).date(),
    )


@bp.route("/<int:rid>/decide", methods=["POST"])
@require("fleet")
def decide(rid: int) -> Any:
    req = _request_or_404(rid)
    db = common.db()
    roles.require_allowed(db, "approve", req.council_id)
    try:
        if request.form.get("decision") == "approve":
            disclosure.approve(db, req, g.user, common.now(), request.form.get("note", ""), _ip())
            flash(f"Request {req.reference} approved.", "info")
        elif request.form.get("decision") == "refuse":
            disclosure.refuse(db, req, g.user, common.now(), request.form.get("note", ""), _ip())
            flash(f"Request {req.reference} refused.", "info")
        else:
            raise disclosure.RequestError("decision must be approve or refuse")
    except disclosure.RequestError as err:
        db.rollback()
        flash(str(err), "error")
        return redirect(url_for("evidence.show", rid=rid)), 400  # type: ignore[return-value]
    db.commit()
    return redirect(url_for("evidence.show", rid=rid))


def build_config() -> package.BuildConfig:
    s = common.settings()
    return package.BuildConfig(
        client=s3_client(),
        bucket=s.s3_bucket,
        s3_prefix=s.s3_prefix,
        evidence_dir=evidence_dir(),
        key=signing_key(),
        organisation=s.evidence_org,
        evidence_bucket=s.evidence_bucket,
        evidence_prefix=s.evidence_prefix,
    )


@bp.route("/<int:rid>/package", methods=["POST"])
@require("fleet")
def build_package(rid: int) -> Any:
    req = _request_or_404(rid)
    db = common.db()
    roles.require_allowed(db, "approve", req.council_id)
    try:
        pkg = package.build(db, req, g.user, common.now(), build_config(), _ip())
    except package.PackageError as err:
        db.rollback()
        note(
            db,
            req.council_id,
            req,
            "packaged",
            g.user,
            common.now(),
            outcome="refused",
            ip=_ip(),
            detail={"reason": str(err)},
        )
        db.commit()
        flash(f"Package not built: {err}", "error")
        return redirect(url_for("evidence.show", rid=rid))
    db.commit()
    flash(f"Package {pkg.exhibit_ref} built and signed.", "info")
    return redirect(url_for("evidence.show", rid=rid))


def _package_or_404(req: DisclosureRequest, pid: int) -> EvidencePackage:
    pkg = common.db().get(EvidencePackage, pid)
    if pkg is None or pkg.request_id != req.id:
        abort(404)
    return pkg


def _deliverable(rid: int, pid: int) -> tuple[DisclosureRequest, EvidencePackage]:
    """The request and package behind a delivery action, 404 outside the user's councils or 403 without
    the council's "deliver" permission."""
    req = _request_or_404(rid)
    roles.require_allowed(common.db(), "deliver", req.council_id)
    return req, _package_or_404(req, pid)


def send_package(pkg: EvidencePackage) -> Response:
    """The package's zip as an attachment named after its exhibit reference (Range and conditional
    requests answered by werkzeug)."""
    from flask import send_file

    return send_file(
        package.package_path(evidence_dir(), pkg),
        mimetype="application/zip",
        as_attachment=True,
        download_name=f"{pkg.exhibit_ref}.zip",
        conditional=True,
        max_age=0,
    )


@bp.route("/<int:rid>/packages/<int:pid>.zip")
@require("fleet")
def download_package(rid: int, pid: int) -> Response:
    req, pkg = _deliverable(rid, pid)
    db = common.db()
    note(
        db,
        req.council_id,
        req,
        "staff_download",
        g.user,
        common.now(),
        ip=_ip(),
        detail={"exhibit": pkg.exhibit_ref, "range": request.headers.get("Range", "")[:64]},
    )
    db.commit()
    return send_package(pkg)


__all__ = ["bp", "evidence_dir", "signing_key", "RequestState"]
