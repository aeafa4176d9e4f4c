"""People in the control room: password login, signed session cookies, CSRF tokens, roles.

Every web request passes here first (load the user, check CSRF on state changes); views then ask
`require(permission)`; the council scope of what they may see lives in `control_room.scope`.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Callable
from datetime import datetime, timedelta
from functools import wraps
from typing import Any, TypeVar
from urllib.parse import urlsplit

from flask import (
    Blueprint,
    Flask,
    Response,
    abort,
    current_app,
    g,
    jsonify,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from sqlalchemy import select

from control_room import audit, login_limits, sessions
from control_room.db import begin_read_only, begin_soft_commit, get_session
from control_room.errors import HashingBusy, LoginThrottled
from control_room.hashing import BUSY_MESSAGE, HashPool
from control_room.models import User

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
SHIFT = sessions.Limits(idle=timedelta(hours=1), lifetime=timedelta(hours=13))  # a 12-hour shift + handover
LIVE_HEADER = "X-CCTV-Live"  # sent by the pages' own fetches (static/session.js): answer 401, not a redirect
FORM_LIMIT_BYTES = 1024 * 1024  # the pages' forms are a few KB; the unit API sets its own, smaller limit


def init_app(app: Flask, secure_cookies: bool = False, exempt_prefixes: tuple[str, ...] = ("/api/",),
             hash_workers: int = 1, hash_pending: int = 2,
             limits: sessions.Limits = SHIFT) -> None:
    """Cookie settings, the per-request user and the CSRF check; `exempt_prefixes` use bearer tokens.

    Passwords are hashed in a pool of `hash_workers` threads with `hash_pending` waiting places
    (control_room.hashing), never on the request threads that serve units.
    """
    app.extensions["cctv_hashing"] = HashPool(hash_workers, hash_pending)
    app.extensions["cctv_session_limits"] = limits
    app.config.update(
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=secure_cookies,
        SESSION_COOKIE_NAME="cctv_session",
        PERMANENT_SESSION_LIFETIME=limits.lifetime,
        MAX_CONTENT_LENGTH=FORM_LIMIT_BYTES,
    )
    app.extensions["cctv_csrf_exempt"] = exempt_prefixes
    app.before_request(_load_user)
    app.before_request(_check_csrf)
    app.jinja_env.globals["csrf_token"] = csrf_token
    app.jinja_env.globals["can"] = can
    app.register_blueprint(bp)


def hash_pool() -> HashPool:
    return current_app.extensions["cctv_hashing"]


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
    """The person behind the cookie, if their session is still open (control_room.sessions)."""
    g.user, g.session_over = None, None
    if session.get("user_id") is None:
        return
    db = get_session()
    now = _now()
    row, why = sessions.resume(db, session.get("sid"), now, current_app.extensions["cctv_session_limits"])
    user = db.get(User, row.user_id) if row is not None else None
    if row is None or user is None or user.id != session.get("user_id"):
        g.session_over = why or "ended"
    elif not user.active or session.get("pw") != password_stamp(user):
        sessions.end(row, now, "disabled" if not user.active else "password changed")
        g.session_over = "disabled" if not user.active else "password changed"
    if g.session_over is not None:
        session.clear()
    else:
        g.user = user
    if g.session_over is not None or (row is not None and row.last_seen_at == now):
        db.commit()  # a session ended, or seen (at most once a minute): keep it


def password_stamp(user: User) -> str:
    """A short digest of the password hash: changing the password ends every old session."""
    return hashlib.sha256(user.password_hash.encode()).hexdigest()[:16]


def _now() -> datetime:
    return current_app.extensions["cctv_clock"].now()


def can(permission: str) -> bool:
    user = g.get("user")
    return user is not None and permission in PERMISSIONS.get(user.role, frozenset())


def require(permission: str) -> Callable[[F], F]:
    """Log in first; then 403 unless the user's role grants `permission`."""

    def decorator(view: F) -> F:
        @wraps(view)
        def wrapped(*args: Any, **kwargs: Any) -> Any:
            if g.get("user") is None:
                if request.headers.get(LIVE_HEADER) == "1":  # a page's background fetch: let the page say so
                    return _session_over()
                return redirect(url_for("auth.login", next=request.full_path.rstrip("?")))
            if g.user.must_change_password:
                return redirect(url_for("account.change_password"))
            if not can(permission):
                abort(403, description=f"your role ({g.user.role}) does not allow this")
            return view(*args, **kwargs)

        return wrapped  # type: ignore[return-value]

    return decorator


SESSION_OVER = {
    "idle": "You were logged out after a time without activity.",
    "expired": "Your session reached its time limit (one shift).",
    "logout": "You logged out in another tab.",
    "everywhere": "You logged out everywhere.",
    "disabled": "Your account has been disabled.",
    "password changed": "Your password was changed.",
}


def _session_over() -> tuple[Response, int]:
    reason = g.get("session_over") or "ended"
    message = SESSION_OVER.get(reason, "Your session has ended.")
    return jsonify(error="session ended", session="ended", reason=reason, message=message,
                   login=url_for("auth.login")), 401


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
    username = request.form.get("username", "").strip()[:64]
    password = request.form.get("password", "")
    ip = (request.remote_addr or "")[:64]
    now = _now()
    db = get_session()
    if hash_pool().full():  # a flood's common case: refused before the user and limit queries
        return _refused(db, username, ip, None, now, HashingBusy(BUSY_MESSAGE))
    begin_read_only(db)  # the checks hold no write lock: a flood of log-ins cannot queue unit writes
    user = db.scalar(select(User).where(User.username == username)) if username else None
    user_id = user.id if user is not None else None
    usable = user is not None and user.active
    password_hash = user.password_hash if usable else None
    cookie = request.cookies.get(login_limits.DEVICE_COOKIE)
    device = login_limits.known_device(current_app.secret_key, cookie, user_id)
    try:
        login_limits.check(db, username, ip, device, now)
        db.rollback()  # no transaction (SQLite: no write lock) is held while the password is hashed
        ok = hash_pool().check(password_hash, password)
    except (LoginThrottled, HashingBusy) as exc:
        return _refused(db, username, ip, device, now, exc)
    if not ok:
        login_limits.record(db, username, ip, device, now)
        audit.record(db, None, "login_failed", "user", username, {"ip": ip, "known_device": bool(device)},
                     at=now)
        db.commit()
        return render_template("auth/login.html", error="Wrong user name or password.", next=""), 401
    user = db.get(User, user_id)
    session.clear()  # a fresh session (and CSRF token) on every login: no session fixation
    session.permanent = True
    session["user_id"] = user.id
    session["pw"] = password_stamp(user)
    session["sid"] = sessions.begin(db, user, now, ip, request.headers.get("User-Agent", ""))
    user.last_login_at = now
    audit.record(db, user, "login", "user", username, {"ip": ip})
    db.commit()
    response = redirect(_safe_next(request.form.get("next")))
    cookie, _ = login_limits.new_device_cookie(current_app.secret_key, user.id, device)
    response.set_cookie(login_limits.DEVICE_COOKIE, cookie, max_age=login_limits.DEVICE_COOKIE_MAX_AGE_S,
                        httponly=True, samesite="Lax", secure=current_app.config["SESSION_COOKIE_SECURE"])
    return response


def _refused(db: Any, username: str, ip: str, device: str | None, now: datetime,
             exc: LoginThrottled | HashingBusy) -> Any:
    """Throttled or no hashing slot: recorded cheaply (soft commit), answered at once, nothing hashed."""
    db.rollback()
    begin_soft_commit(db)
    login_limits.record(db, username, ip, device, now, throttled=True)
    db.commit()
    retry = exc.retry_after_s if isinstance(exc, LoginThrottled) else 2
    page = render_template("auth/login.html", error=str(exc), next="")
    return page, exc.status, {"Retry-After": str(retry)}


@bp.route("/logout", methods=["POST"])
def logout() -> Any:
    """End this session only; the person's other browsers stay logged in."""
    user = g.get("user")
    if user is not None:
        db = get_session()
        limits = current_app.extensions["cctv_session_limits"]
        row, _ = sessions.resume(db, session.get("sid"), _now(), limits)
        if row is not None:
            sessions.end(row, _now(), "logout")
        audit.record(db, user, "logout", "user", user.username, None)
        db.commit()
    session.clear()
    return redirect(url_for("auth.login"))


@bp.route("/logout/everywhere", methods=["POST"])
def logout_everywhere() -> Any:
    """End every session of this person (a lost phone, a shared PC): a copied cookie dies too."""
    user = g.get("user")
    if user is not None:
        db = get_session()
        ended = sessions.end_all(db, user.id, _now(), "everywhere")
        user.sessions_valid_after = _now()
        audit.record(db, user, "logout_everywhere", "user", user.username, {"sessions": ended})
        db.commit()
    session.clear()
    return redirect(url_for("auth.login"))
