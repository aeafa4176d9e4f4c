"""The recipient's pages (no control-room account): open a share link, enter the emailed code, confirm
the receipt, download the package (resumable, HTTP Range). Every attempt, allowed or refused, is
recorded with the IP address in the register and the audit log.

Registered by evidence.init_app under /share; staff create and revoke links in evidence.web.
"""

from __future__ import annotations

from typing import Any

from flask import (
    Blueprint,
    Response,
    abort,
    current_app,
    redirect,
    render_template,
    request,
    session,
    url_for,
)

from control_room import audit
from control_room.evidence import mail, share
from control_room.evidence.models import ShareLink
from control_room.evidence.register import note
from control_room.web import common

bp = Blueprint("share", __name__, url_prefix="/share")
SESSION_KEY = "evidence_shares"
PRESIGNED_MAX_S = 300


def _presigned(settings: Any, pkg: Any, ttl: int) -> str:
    from control_room.evidence.package import stored_key
    from control_room.web.footage import s3_client

    return str(
        s3_client().generate_presigned_url(
            "get_object",
            ExpiresIn=ttl,
            Params={
                "Bucket": settings.evidence_bucket,
                "Key": stored_key(settings.evidence_prefix, pkg),
                "ResponseContentDisposition": f'attachment; filename="{pkg.exhibit_ref}.zip"',
            },
        )
    )


def _secret() -> str:
    return str(current_app.config["SECRET_KEY"])


def _ip() -> str:
    return request.remote_addr or ""


def _note(link: ShareLink, action: str, outcome: str = "ok", **detail: Any) -> None:
    req = link.package.request
    note(
        common.db(),
        req.council_id,
        req,
        action,
        None,
        common.now(),
        outcome=outcome,
        ip=_ip(),
        recipient=(link.recipient_name, link.recipient_org),
        actor=f"recipient via link {link.id}",
        detail={"link": link.id, "exhibit": link.package.exhibit_ref, **detail},
    )


def _link(token: str, action: str) -> ShareLink:
    """The usable link for the token, else a refusal page (recorded): unknown, revoked, locked, expired."""
    db = common.db()
    link = share.find(db, token)
    if link is None:
        audit.record(
            db,
            None,
            f"evidence_{action}_refused",
            "share_link",
            "unknown",
            {"ip": _ip(), "reason": "unknown or altered token"},
            at=common.now(),
        )
        db.commit()
        abort(404, description="This link is not valid. Check it was copied in full, or ask the sender.")
    why = share.unusable(link, common.now())
    if why is not None:
        _note(link, action, "refused", reason=why)
        db.commit()
        abort(
            410, description=f"This link can no longer be used: it was {why}. Ask the sender for a new one."
        )
    return link


def _opened(link: ShareLink) -> bool:
    return session.get(SESSION_KEY, {}).get(str(link.id)) == link.token_hash[:16]


@bp.route("/<token>")
def open_link(token: str) -> Any:
    link = _link(token, "share_open")
    db = common.db()
    _note(link, "share_open", opened=_opened(link))
    db.commit()
    if not _opened(link):
        return render_template(
            "evidence/share_code.html",
            link=link,
            token=token,
            attempts_left=common.settings().share_code_attempts - link.failed_codes,
        )
    return render_template(
        "evidence/share_receipt.html", link=link, pkg=link.package, token=token, fingerprint=_fingerprint()
    )


def _fingerprint() -> str:
    import hashlib

    from control_room.evidence.signing import raw_public
    from control_room.evidence.web import signing_key

    return hashlib.sha256(raw_public(signing_key())).hexdigest()


@bp.route("/<token>/code", methods=["POST"])
def enter_code(token: str) -> Any:
    link = _link(token, "share_code")
    db = common.db()
    attempts = common.settings().share_code_attempts
    if share.check_code(link, request.form.get("code", "")[:40], _secret(), common.now(), attempts):
        shares = dict(session.get(SESSION_KEY, {}))
        shares[str(link.id)] = link.token_hash[:16]
        session[SESSION_KEY] = shares
        _note(link, "share_code")
        db.commit()
        return redirect(url_for("share.open_link", token=token))
    _note(
        link,
        "share_code",
        "refused",
        reason="wrong or already used code",
        failed=link.failed_codes,
        locked=link.locked_at is not None,
    )
    db.commit()
    if link.locked_at is not None:
        abort(
            410, description="This link is locked after too many wrong codes. Ask the sender for a new one."
        )
    left = attempts - link.failed_codes
    return render_template(
        "evidence/share_code.html",
        link=link,
        token=token,
        attempts_left=left,
        error=f"That code is not right (or was already used). {left} attempt(s) left.",
    ), 403


@bp.route("/<token>/resend", methods=["POST"])
def resend(token: str) -> Any:
    link = _link(token, "share_resend")
    db = common.db()
    try:
        code = share.reissue_code(link, _secret(), common.now())
        subject, body = share.code_email(link, link.package, code)
        mail.send(common.settings(), link.recipient_email, subject, body)
    except (share.ShareError, mail.MailError) as err:
        db.rollback()
        _note(link, "share_resend", "refused", reason=str(err))
        db.commit()
        return render_template(
            "evidence/share_code.html",
            link=link,
            token=token,
            error=str(err),
            attempts_left=common.settings().share_code_attempts - link.failed_codes,
        ), 429
    _note(link, "share_resend")
    db.commit()
    return render_template(
        "evidence/share_code.html",
        link=link,
        token=token,
        sent=True,
        attempts_left=common.settings().share_code_attempts - link.failed_codes,
    )


@bp.route("/<token>/receipt", methods=["POST"])
def confirm_receipt(token: str) -> Any:
    link = _link(token, "receipt")
    db = common.db()
    if not _opened(link):
        _note(link, "receipt", "refused", reason="code not entered in this browser")
        db.commit()
        abort(403, description="Enter the access code first.")
    name = request.form.get("name", "").strip()[:200]
    if request.form.get("confirm") != "yes" or not name:
        return redirect(url_for("share.open_link", token=token))
    pkg = link.package
    if link.receipt_at is None:
        link.receipt_at = common.now()
        link.receipt = {
            "name": name,
            "exhibit": pkg.exhibit_ref,
            "zip_sha256": pkg.sha256,
            "tagmanifest_sha256": pkg.tagmanifest_sha256,
            "master_files": pkg.master_files,
            "at": link.receipt_at.isoformat(),
            "ip": _ip(),
        }
        _note(link, "receipt", confirmed_by=name, zip_sha256=pkg.sha256)
        db.commit()
    return redirect(url_for("share.open_link", token=token))


@bp.route("/<token>/download")
def download(token: str) -> Response:
    from control_room.evidence.web import send_package

    link = _link(token, "download")
    db = common.db()
    why = None if _opened(link) else "code not entered in this browser"
    why = why or (None if link.receipt_at is not None else "receipt not confirmed")
    if why is not None:
        _note(link, "download", "refused", reason=why)
        db.commit()
        abort(403, description=f"Download refused: {why}.")
    pkg = link.package
    rng = request.headers.get("Range", "")[:64]
    if not rng or rng.startswith("bytes=0-"):
        link.downloads += 1
    settings = common.settings()
    if settings.evidence_bucket:  # a presigned URL minted for this click, valid at most 5 minutes
        ttl = min(PRESIGNED_MAX_S, int(settings.presign_ttl_s))
        url = _presigned(settings, pkg, ttl)
        _note(link, "download", range=rng or "whole", via=f"presigned URL, {ttl} s")
        db.commit()
        return redirect(url, 303)  # type: ignore[return-value]
    _note(link, "download", range=rng or "whole")
    db.commit()
    return send_package(pkg)
