"""User administration page for admins: everyone in their council (a partnership admin: everyone),
with last log-in and recent failed log-ins; invite or create, disable, re-enable, reset a password,
change role and council. The work is done by control_room.users, which audits every change.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from flask import Blueprint, flash, g, redirect, render_template, request, url_for
from sqlalchemy import func, select

from control_room import users
from control_room.auth import hash_pool, require
from control_room.errors import ControlRoomError
from control_room.models import LoginFailure, Role
from control_room.web import common

bp = Blueprint("users", __name__)
FAILED_WINDOW = timedelta(hours=24)


def _failed_logins(names: list[str]) -> dict[str, int]:
    since = common.now() - FAILED_WINDOW
    rows = common.db().execute(
        select(LoginFailure.username, func.count()).where(LoginFailure.username.in_(names),
                                                          LoginFailure.at >= since)
        .group_by(LoginFailure.username))
    return {name: int(count) for name, count in rows}


def _page(link: str | None = None, error: str | None = None, status: int = 200) -> tuple[str, int]:
    people = users.listing(common.db(), g.user)
    from control_room import scope

    return render_template(
        "users/index.html", people=people, failed=_failed_logins([p.username for p in people]),
        roles=[r.value for r in Role], councils=scope.councils(common.db(), g.user), link=link, error=error,
    ), status


@bp.route("/admin/users")
@require("admin")
def index() -> Any:
    return _page()


def _temporary_hash() -> str | None:
    """The admin-set temporary password (hashed in the pool), or None to issue a one-time link."""
    if request.form.get("method") != "temporary":
        return None
    password = users.check_password_rules(request.form.get("temporary_password", ""))
    return hash_pool().generate(password)


def _done(message: str, token: str | None) -> Any:
    common.db().commit()
    link = url_for("account.set_password", token=token, _external=True) if token else None
    if link:  # shown once, on this page only: the admin passes it to the person
        return _page(link=link)
    flash(message, "info")
    return redirect(url_for("users.index"), 303)


@bp.route("/admin/users", methods=["POST"])
@require("admin")
def create() -> Any:
    db = common.db()
    try:
        user, token = users.create(db, g.user, request.form.get("username", "").strip(),
                                   request.form.get("role", ""), request.form.get("council") or None,
                                   _temporary_hash(), common.now())
    except ControlRoomError as exc:
        db.rollback()
        return _page(error=str(exc), status=400)
    return _done(f"User {user.username} created with a temporary password.", token)


@bp.route("/admin/users/<username>/<any(disable, enable, reset, role):action>", methods=["POST"])
@require("admin")
def change(username: str, action: str) -> Any:
    db, now = common.db(), common.now()
    token = None
    try:
        if action in ("disable", "enable"):
            users.set_active(db, g.user, username, action == "enable", now)
            message = f"User {username} {action}d."
        elif action == "reset":
            _, token = users.reset_password(db, g.user, username, _temporary_hash(), now)
            message = f"User {username} has a temporary password; they must change it at their next log-in."
        else:
            users.set_role(db, g.user, username, request.form.get("role", ""),
                           request.form.get("council") or None, now)
            message = f"User {username}'s role changed; their sessions were ended."
    except ControlRoomError as exc:
        db.rollback()
        return _page(error=str(exc), status=400)
    return _done(message, token)
