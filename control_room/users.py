"""User administration, shared by the admin page (control_room.web.users) and the CLI: invite or
create, disable (ends their sessions at once), re-enable, reset a password (a one-time link, or a
temporary password that must be changed), change role and council. Every change is audited.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from control_room import audit, names, sessions
from control_room.errors import UserError
from control_room.models import Council, PasswordToken, Role, User

MIN_PASSWORD = 10
LINK_LIFETIME = timedelta(hours=72)


def check_password_rules(password: str) -> str:
    if len(password) < MIN_PASSWORD:
        raise UserError(f"password must be at least {MIN_PASSWORD} characters")
    if len(password) > 200:
        raise UserError("password must be at most 200 characters")
    return password


def manageable(db: Session, admin: User | None, username: str) -> User:
    """The user `admin` may change (None = the CLI, which may change anyone)."""
    user = db.scalar(select(User).where(User.username == username))
    if user is None or (admin is not None and not admin.partnership_wide
                        and (user.council_id != admin.council_id or user.partnership_wide)):
        raise UserError(f"no user {username!r}" + ("" if admin is None else " in your council"))
    return user


def _council(db: Session, admin: User | None, slug: str | None, role: Role) -> int | None:
    if admin is not None and not admin.partnership_wide:
        if slug not in (None, "", admin.council.slug if admin.council else None):
            raise UserError("a council's admin manages only their own council's people")
        return admin.council_id
    if not slug:
        if role != Role.ADMIN:
            raise UserError("only an admin may have no council (partnership-wide)")
        return None
    council = db.scalar(select(Council).where(Council.slug == slug))
    if council is None:
        raise UserError(f"no council {slug!r}")
    return council.id


def _role(role: str) -> Role:
    try:
        return Role(role)
    except ValueError:
        raise UserError(f"role {role!r} is not one of {', '.join(r.value for r in Role)}") from None


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def issue_link(db: Session, user: User, purpose: str, now: datetime) -> str:
    """A one-time token to set the password (shown once; only its hash is kept)."""
    token = secrets.token_urlsafe(32)
    db.add(PasswordToken(token_hash=_digest(token), user_id=user.id, purpose=purpose, created_at=now,
                         expires_at=now + LINK_LIFETIME))
    return token


def redeem_link(db: Session, token: str, now: datetime) -> tuple[User, PasswordToken]:
    row = db.scalar(select(PasswordToken).where(PasswordToken.token_hash == _digest(token)))
    if row is None or row.used_at is not None or row.expires_at <= now:
        raise UserError("this link is unknown, already used or expired: ask an admin for a new one")
    return db.get(User, row.user_id), row


def create(db: Session, admin: User | None, username: str, role: str, council: str | None,
           password_hash: str | None, now: datetime) -> tuple[User, str | None]:
    """A new person: with a temporary password (hash given, must be changed) or an invitation link."""
    names.check(names.USERNAME, username, "username")
    role_value = _role(role)
    if admin is not None and not admin.partnership_wide and role_value == Role.ADMIN and not council:
        council = admin.council.slug if admin.council else None
    council_id = _council(db, admin, council, role_value)
    if db.scalar(select(User.id).where(User.username == username)) is not None:
        raise UserError(f"user {username!r} already exists")
    user = User(username=username, role=role_value, council_id=council_id, active=True,
                password_hash=password_hash or "", must_change_password=password_hash is not None)
    db.add(user)
    db.flush()
    link = None if password_hash else issue_link(db, user, "invite", now)
    audit.record(db, admin, "user_create", "user", username,
                 {"role": role_value.value, "council_id": council_id, "by": "link" if link else "temporary"},
                 at=now, actor="" if admin else "cli")
    return user, link


def set_active(db: Session, admin: User | None, username: str, active: bool, now: datetime) -> User:
    user = manageable(db, admin, username)
    if admin is not None and user.id == admin.id and not active:
        raise UserError("you cannot disable yourself")
    user.active = active
    ended = 0 if active else sessions.end_all(db, user.id, now, "disabled")
    audit.record(db, admin, "user_enable" if active else "user_disable", "user", username,
                 {"sessions_ended": ended}, at=now, actor="" if admin else "cli")
    return user


def reset_password(db: Session, admin: User | None, username: str, temporary_hash: str | None,
                   now: datetime) -> tuple[User, str | None]:
    """Temporary password (must be changed at next log-in) or a one-time link; ends their sessions."""
    user = manageable(db, admin, username)
    link = None
    if temporary_hash is not None:
        user.password_hash, user.must_change_password = temporary_hash, True
    else:
        link = issue_link(db, user, "reset", now)
    ended = sessions.end_all(db, user.id, now, "password reset")
    audit.record(db, admin, "user_password_reset", "user", username,
                 {"by": "link" if link else "temporary", "sessions_ended": ended}, at=now,
                 actor="" if admin else "cli")
    return user, link


def set_role(db: Session, admin: User | None, username: str, role: str, council: str | None,
             now: datetime) -> User:
    user = manageable(db, admin, username)
    role_value = _role(role)
    council_id = _council(db, admin, council, role_value)
    changed = role_value != user.role or council_id != user.council_id
    if admin is not None and user.id == admin.id and changed:
        raise UserError("you cannot change your own role or council")
    before = {"role": user.role.value, "council_id": user.council_id}
    user.role, user.council_id = role_value, council_id
    sessions.end_all(db, user.id, now, "role changed")  # what they may see changed: log in again
    audit.record(db, admin, "user_role", "user", username,
                 {"before": before, "after": {"role": role_value.value, "council_id": council_id}},
                 at=now, actor="" if admin else "cli")
    return user


def set_password(db: Session, user: User, password_hash: str, now: datetime, how: str) -> None:
    """The person's own new password (change page or one-time link)."""
    user.password_hash, user.must_change_password = password_hash, False
    audit.record(db, user, "password_change", "user", user.username, {"how": how}, at=now)


def listing(db: Session, admin: User | None) -> list[User]:
    stmt = select(User).order_by(User.username)
    if admin is not None and not admin.partnership_wide:
        stmt = stmt.where(User.council_id == admin.council_id)
    return list(db.scalars(stmt))
