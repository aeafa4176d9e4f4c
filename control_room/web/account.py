"""A person's own account: change their password (required after an admin set a temporary one),
set a password from a one-time link (invitation or reset), and see their open sessions' count.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, flash, g, redirect, render_template, request, session, url_for

from control_room import sessions, users
from control_room.auth import hash_pool, password_stamp
from control_room.errors import ControlRoomError, HashingBusy, UserError
from control_room.web import common

bp = Blueprint("account", __name__)


def _new_password() -> str:
    password = request.form.get("new_password", "")
    if password != request.form.get("confirm_password", ""):
        raise UserError("the two new passwords differ")
    return users.check_password_rules(password)


@bp.route("/account/password", methods=["GET", "POST"])
def change_password() -> Any:
    if g.get("user") is None:
        return redirect(url_for("auth.login", next=request.path))
    if request.method == "GET":
        return render_template("account/password.html", forced=g.user.must_change_password)
    db, user, now = common.db(), g.user, common.now()
    current, stored = request.form.get("current_password", ""), user.password_hash
    try:
        new = _new_password()
        db.rollback()  # no transaction is held while hashing
        if not hash_pool().check(stored, current):
            raise UserError("the current password is wrong")
        new_hash = hash_pool().generate(new)
    except (ControlRoomError, HashingBusy) as exc:
        return render_template("account/password.html", forced=g.user.must_change_password,
                               error=str(exc)), exc.status
    user = db.merge(user)
    users.set_password(db, user, new_hash, now, "changed")
    ended = sessions.end_all(db, user.id, now, "password changed")
    sid = sessions.begin(db, user, now, request.remote_addr or "", request.headers.get("User-Agent", ""))
    db.commit()
    session["sid"], session["pw"] = sid, password_stamp(user)  # this browser stays logged in
    flash(f"Password changed; {max(0, ended - 1)} other session(s) ended.", "info")
    return redirect(url_for("fleet.index"), 303)


@bp.route("/account/set-password/<token>", methods=["GET", "POST"])
def set_password(token: str) -> Any:
    db, now = common.db(), common.now()
    try:
        user, row = users.redeem_link(db, token[:100], now)
    except UserError as exc:
        return render_template("account/set_password.html", error=str(exc), dead=True), 404
    if request.method == "GET":
        return render_template("account/set_password.html", username=user.username)
    user_id, row_id, username = user.id, row.id, user.username
    try:
        new = _new_password()
        db.rollback()
        new_hash = hash_pool().generate(new)
    except (ControlRoomError, HashingBusy) as exc:
        return render_template("account/set_password.html", username=username, error=str(exc)), exc.status
    user, row = users.redeem_link(db, token[:100], now)  # again, in this transaction: used once only
    if (user.id, row.id) != (user_id, row_id):
        return render_template("account/set_password.html", error="this link has changed", dead=True), 409
    row.used_at = now
    users.set_password(db, user, new_hash, now, row.purpose)
    sessions.end_all(db, user.id, now, "password changed")
    db.commit()
    flash("Password set: log in with it now.", "info")
    return redirect(url_for("auth.login"), 303)
