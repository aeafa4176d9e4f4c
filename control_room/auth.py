"""People in the control room: password login, signed session cookies, CSRF tokens, roles.

Every web request passes here first (load the user, check CSRF on state changes); views then ask
`require(permission)`; the council scope of what they may see lives in `control_room.scope`.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from functools import cache, wraps
from typing import Any, TypeVar
from urllib.parse import urlsplit

from flask import (
    Blueprint,
    Flask,
    abort,
    current_app,
    g,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from sqlalchemy import func, select
from werkzeug.security import check_password_hash, generate_password_hash

from control_room import audit
from control_room.db import get_session
from control_room.models import AuditLog, User

bp = Blueprint("auth", __name__)

F = TypeVar("F", bound=Callable[..., Any])

# What each role may do; a partnership admin (no council) may do all of it for every council.
PERMISSIONS: dict[str, frozenset[str]] = {
    "operator": frozenset({"fleet", "footage"}),
    "officer": frozenset({"fleet", "footage", "locations"}),
    "engineer": frozenset({"fleet"}),
    "admin": frozenset({"fleet", "footage", "locations", "admin"}),
}
STATE_CHANGING = {"POST", "PUT", "PATCH", "DELETE"}
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "X-CSRF-Token"
LOCKOUT_FAILURES = 5
LOCKOUT_WINDOW = timedelta(minutes=15)
SESSION_LIFETIME = timedelta(hours=8)
FORM_LIMIT_BYTES = 1024 * 1024  # the pages' forms are a few KB; the unit API sets its own, smaller limit


def init_app(app: Flask, secure_cookies: bool = False, exempt_prefixes: tuple[str, ...] = ("/api/",)) -> None:
    """Cookie settings, the per-request user and the CSRF check; `exempt_prefixes` use bearer tokens."""
    app.config.update(
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=secure_cookies,
        SESSION_COOKIE_NAME="cctv_session",
        PERMANENT_SESSION_LIFETIME=SESSION_LIFETIME,
        MAX_CONTENT_LENGTH=FORM_LIMIT_BYTES,
    )
    app.extensions["cctv_csrf_exempt"] = exempt_prefixes
    app.before_request(_load_user)
    app.before_request(_check_csrf)
    app.jinja_env.globals["csrf_token"] = csrf_token
    app.jinja_env.globals["can"] = can
    app.register_blueprint(bp)


def csrf_token() -> str:
    """The session's CSRF token (made on first use); every form and state-changing fetch sends it."""
    if CSRF_FIELD not in session:
        session[CSRF_FIELD] = secrets.token_urlsafe(32)
    return session[CSRF_FIELD]


def _check_csrf() -> None:
    if request.method not in STATE_CHANGING:
        return
    if request.path.startswith(current_app.extensions["cctv_csrf_exempt"]):
        return
    expected = session.get(CSRF_FIELD)
    sent = request.form.get(CSRF_FIELD) or request.headers.get(CSRF_HEADER) or ""
    if not expected or not hmac.compare_digest(str(expected).encode(), sent.encode()):
        abort(400, description="missing or wrong CSRF token: reload the page and try again")


def _load_user() -> None:
    g.user = None
    user_id = session.get("user_id")
    if user_id is None:
        return
    user = get_session().get(User, user_id)
    if (user is None or not getattr(user, "active", True) or session.get("pw") != _password_stamp(user)
            or not _begun_after_logout(user)):
        session.clear()  # deleted, disabled, password changed or logged out since: log out everywhere
        return
    g.user = user


def _begun_after_logout(user: User) -> bool:
    """The signed cookie outlives a logout; the user's `sessions_valid_after` ends it server-side."""
    cutoff = user.sessions_valid_after
    return cutoff is None or float(session.get("at", 0)) > cutoff.timestamp()


def _password_stamp(user: User) -> str:
    """A short digest of the password hash: changing the password ends every old session."""
    return hashlib.sha256(user.password_hash.encode()).hexdigest()[:16]


def can(permission: str) -> bool:
    user = g.get("user")
    return user is not None and permission in PERMISSIONS.get(user.role, frozenset())


def require(permission: str) -> Callable[[F], F]:
    """Log in first; then 403 unless the user's role grants `permission`."""

    def decorator(view: F) -> F:
        @wraps(view)
        def wrapped(*args: Any, **kwargs: Any) -> Any:
            if g.get("user") is None:
                return redirect(url_for("auth.login", next=request.full_path.rstrip("?")))
            if not can(permission):
                abort(403, description=f"your role ({g.user.role}) does not allow this")
            return view(*args, **kwargs)

        return wrapped  # type: ignore[return-value]

    return decorator


@cache
def _decoy_hash() -> str:
    """A hash of no one's password: checked for unknown or disabled names so they cost the same time."""
    return generate_password_hash(secrets.token_urlsafe(32), method="scrypt")


def _password_ok(user: User | None, password: str) -> bool:
    if user is None or not getattr(user, "active", True):
        check_password_hash(_decoy_hash(), password)
        return False
    return user.check_password(password)


def _recent_failures(username: str, now: datetime) -> int:
    stmt = (
        select(func.count())
        .select_from(AuditLog)
        .where(
            AuditLog.action == "login_failed",
            AuditLog.item_type == "user",
            AuditLog.item_id == username,
            AuditLog.at >= now - LOCKOUT_WINDOW,
        )
    )
    return int(get_session().scalar(stmt) or 0)


def _safe_next(target: str | None) -> str:
    """Only same-site paths: an open redirect after login would help phishing."""
    if (not target or not target.startswith("/") or target.startswith("//") or "\\" in target
            or any(ord(c) < 32 for c in target) or urlsplit(target).netloc):
        return url_for("fleet.index")
    return target


@bp.route("/login", methods=["GET", "POST"])
def login() -> Any:
    if request.method == "GET":
        return render_template("auth/login.html", next=request.args.get("next", ""))
    username = request.form.get("username", "").strip()[:100]
    password = request.form.get("password", "")
    now = datetime.now(UTC)
    db = get_session()
    if _recent_failures(username, now) >= LOCKOUT_FAILURES:
        audit.record(db, None, "login_locked", "user", username, {"ip": request.remote_addr})
        db.commit()
        return render_template(
            "auth/login.html", error="Too many failed attempts: try again in 15 minutes.", next=""
        ), 429
    user = db.scalar(select(User).where(User.username == username)) if username else None
    if not _password_ok(user, password):
        audit.record(db, None, "login_failed", "user", username, {"ip": request.remote_addr})
        db.commit()
        return render_template("auth/login.html", error="Wrong user name or password.", next=""), 401
    session.clear()  # a fresh session (and CSRF token) on every login: no session fixation
    session.permanent = True
    session["user_id"] = user.id
    session["pw"] = _password_stamp(user)
    session["at"] = now.timestamp()
    user.last_login_at = now
    audit.record(db, user, "login", "user", username, {"ip": request.remote_addr})
    db.commit()
    return redirect(_safe_next(request.form.get("next")))


@bp.route("/logout", methods=["POST"])
def logout() -> Any:
    user = g.get("user")
    if user is not None:
        db = get_session()
        user.sessions_valid_after = datetime.now(UTC)  # a copy of the cookie is useless from now on
        audit.record(db, user, "logout", "user", user.username, None)
        db.commit()
    session.clear()
    return redirect(url_for("auth.login"))
