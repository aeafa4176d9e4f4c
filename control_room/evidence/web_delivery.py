"""Staff pages that hand evidence out or keep it: share links (create, revoke), pushes to a police
store, evidential holds (place, release). Routes on the evidence blueprint (evidence.web.bp).

Imported by evidence.init_app; each action is checked against evidence.roles and goes in the register.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from flask import abort, current_app, flash, g, redirect, render_template, request, url_for

from control_room.auth import require
from control_room.evidence import delivery, holds, mail, package, roles, share
from control_room.evidence.models import EvidenceHold, PoliceStore, ShareLink
from control_room.evidence.register import note
from control_room.evidence.web import _deliverable, _ip, _request_or_404, bp, evidence_dir
from control_room.web import common
from control_room.web.footage import s3_client


@bp.route("/<int:rid>/packages/<int:pid>/share", methods=["POST"])
@require("fleet")
def create_share(rid: int, pid: int) -> Any:
    req, pkg = _deliverable(rid, pid)
    db = common.db()
    s = common.settings()
    f = request.form
    try:
        days = int(f.get("days", s.share_default_days))
        made = share.create(
            db,
            pkg,
            g.user,
            common.now(),
            f.get("name", ""),
            f.get("org", ""),
            f.get("email", ""),
            days,
            s.share_max_days,
            current_app.config["SECRET_KEY"],
        )
        subject, body = share.code_email(made.link, pkg, made.code)
        mail.send(s, made.link.recipient_email, subject, body)
    except (ValueError, mail.MailError) as err:
        db.rollback()
        note(
            db,
            req.council_id,
            req,
            "share_created",
            g.user,
            common.now(),
            outcome="refused",
            ip=_ip(),
            recipient=(f.get("name", "")[:200], f.get("org", "")[:200]),
            detail={"reason": str(err)},
        )
        db.commit()
        flash(f"Link not created: {err}", "error")
        return redirect(url_for("evidence.show", rid=rid))
    note(
        db,
        req.council_id,
        req,
        "share_created",
        g.user,
        common.now(),
        ip=_ip(),
        recipient=(made.link.recipient_name, made.link.recipient_org),
        detail={
            "exhibit": pkg.exhibit_ref,
            "link": made.link.id,
            "expires": made.link.expires_at.isoformat(),
            "code_sent_to": made.link.recipient_email,
        },
    )
    db.commit()
    url = url_for("share.open_link", token=made.token, _external=True)
    return render_template("evidence/link_created.html", req=req, link=made.link, url=url, pkg=pkg)


@bp.route("/shares/<int:sid>/revoke", methods=["POST"])
@require("fleet")
def revoke_share(sid: int) -> Any:
    db = common.db()
    link = db.get(ShareLink, sid)
    if link is None:
        abort(404)
    req = _request_or_404(link.package.request_id)
    roles.require_allowed(db, "revoke", req.council_id)
    share.revoke(link, g.user, common.now())
    note(
        db,
        req.council_id,
        req,
        "share_revoked",
        g.user,
        common.now(),
        ip=_ip(),
        recipient=(link.recipient_name, link.recipient_org),
        detail={"link": link.id},
    )
    db.commit()
    flash("Link revoked.", "info")
    return redirect(url_for("evidence.show", rid=req.id))


@bp.route("/<int:rid>/packages/<int:pid>/push", methods=["POST"])
@require("fleet")
def push(rid: int, pid: int) -> Any:
    req, pkg = _deliverable(rid, pid)
    db = common.db()
    store = db.get(PoliceStore, request.form.get("store_id", type=common.db_int) or -1)
    if store is None or not store.active or store.council_id not in (None, req.council_id):
        abort(404)
    row = delivery.push(db, pkg, store, g.user, common.now(), package.package_path(evidence_dir(), pkg))
    note(
        db,
        req.council_id,
        req,
        "pushed",
        g.user,
        common.now(),
        ip=_ip(),
        outcome="ok" if row.state == "verified" else "refused",
        recipient=(store.name, store.force),
        detail={"exhibit": pkg.exhibit_ref, "store": store.name, "state": row.state, "error": row.error},
    )
    db.commit()
    flash(
        f"Push to {store.name}: {row.state}{' - ' + row.error if row.error else ''}",
        "info" if row.state == "verified" else "error",
    )
    return redirect(url_for("evidence.show", rid=rid))


@bp.route("/<int:rid>/hold", methods=["POST"])
@require("fleet")
def hold(rid: int) -> Any:
    req = _request_or_404(rid)
    db = common.db()
    roles.require_allowed(db, "hold", req.council_id)
    try:
        review = date.fromisoformat(request.form.get("review_date", ""))
        row = holds.place(
            db,
            req,
            g.user,
            common.now(),
            review,
            request.form.get("reason", ""),
            s3_client(),
            common.settings().s3_bucket,
            common.settings().s3_prefix,
        )
    except (ValueError, holds.HoldError) as err:
        db.rollback()
        flash(f"Hold not placed: {err}", "error")
        return redirect(url_for("evidence.show", rid=rid))
    note(
        db,
        req.council_id,
        req,
        "held",
        g.user,
        common.now(),
        ip=_ip(),
        detail={
            "hold": row.id,
            "objects": len(row.objects),
            "review": row.review_date.isoformat(),
            "reason": row.reason,
        },
    )
    db.commit()
    flash(f"Hold placed on {len(row.objects)} object version(s).", "info")
    return redirect(url_for("evidence.show", rid=rid))


@bp.route("/holds/<int:hid>/release", methods=["POST"])
@require("fleet")
def release(hid: int) -> Any:
    db = common.db()
    row = db.get(EvidenceHold, hid)
    if row is None or row.request_id is None:
        abort(404)
    req = _request_or_404(row.request_id)
    roles.require_allowed(db, "release", req.council_id)
    try:
        holds.release(db, row, g.user, common.now(), request.form.get("reason", ""), s3_client())
    except holds.HoldError as err:
        db.rollback()
        flash(f"Hold not released: {err}", "error")
        return redirect(url_for("evidence.show", rid=req.id))
    note(
        db,
        req.council_id,
        req,
        "hold_released",
        g.user,
        common.now(),
        ip=_ip(),
        detail={"hold": row.id, "reason": row.release_reason},
    )
    db.commit()
    flash("Hold released.", "info")
    return redirect(url_for("evidence.show", rid=req.id))
