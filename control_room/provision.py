"""Councils, units and unit tokens: what `create-council`, `create-unit`, `revoke-unit` and
provisioning call. A token is shown once; only its SHA-256 is stored.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from control_room import clock, names
from control_room.errors import ProvisionError
from control_room.models import Council, Role, Unit, User

__all__ = ["ProvisionError", "create_council", "create_unit", "create_user", "get_council", "get_unit",
           "hash_token", "new_token", "revoke_unit", "rotate_token"]


def new_token() -> str:
    """256 random bits, URL-safe text."""
    return secrets.token_urlsafe(32)


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def get_council(session: Session, slug: str) -> Council:
    council = session.scalar(select(Council).where(Council.slug == slug))
    if council is None:
        raise ProvisionError(f"no council {slug!r}")
    return council


def get_unit(session: Session, unit_id: str) -> Unit:
    unit = session.scalar(select(Unit).where(Unit.unit_id == unit_id))
    if unit is None:
        raise ProvisionError(f"no unit {unit_id!r}")
    return unit


def create_council(session: Session, slug: str, name: str) -> Council:
    names.check(names.COUNCIL_SLUG, slug, "council id")
    name = names.check_display_name(name, "council name")
    if session.scalar(select(Council.id).where(Council.slug == slug)) is not None:
        raise ProvisionError(f"council {slug!r} already exists")
    council = Council(slug=slug, name=name)
    session.add(council)
    session.flush()
    return council


def create_unit(session: Session, unit_id: str, council_slug: str, name: str = "") -> tuple[Unit, str]:
    """A new unit and its token (returned once, never stored in clear)."""
    names.check(names.UNIT_ID, unit_id, "unit id")
    if name:
        name = names.check_display_name(name, "unit name")
    council = get_council(session, council_slug)
    if session.scalar(select(Unit.id).where(Unit.unit_id == unit_id)) is not None:
        raise ProvisionError(f"unit {unit_id!r} already exists")
    token = new_token()
    unit = Unit(unit_id=unit_id, council_id=council.id, name=name, token_hash=hash_token(token))
    session.add(unit)
    session.flush()
    return unit, token


def rotate_token(session: Session, unit_id: str) -> str:
    """A fresh token for an existing unit (re-provisioning); the old one stops working at once."""
    from control_room.custody import refuse_if_stolen

    unit = get_unit(session, unit_id)
    refuse_if_stolen(session, unit)  # a stolen unit is never given a working token again
    token = new_token()
    unit.token_hash = hash_token(token)
    unit.token_created_at = clock.now(session)
    unit.revoked_at = None
    session.flush()
    return token


def revoke_unit(session: Session, unit_id: str, at: datetime | None = None) -> Unit:
    """Cut a (stolen) unit off: its token is refused with 401 "revoked" from now on."""
    unit = get_unit(session, unit_id)
    if unit.revoked_at is None:
        unit.revoked_at = at or clock.now(session)
    session.flush()
    return unit


def create_user(session: Session, username: str, role: str, password: str,
                council_slug: str | None = None) -> User:
    names.check(names.USERNAME, username, "username")
    try:
        role_value = Role(role)
    except ValueError:
        raise ProvisionError(f"role {role!r} is not one of {', '.join(r.value for r in Role)}") from None
    if council_slug is None and role_value != Role.ADMIN:
        raise ProvisionError("only an admin may have no council (partnership-wide); give --council")
    if len(password) < 10:
        raise ProvisionError("password must be at least 10 characters")
    if session.scalar(select(User.id).where(User.username == username)) is not None:
        raise ProvisionError(f"user {username!r} already exists")
    council = get_council(session, council_slug) if council_slug is not None else None
    user = User(username=username, role=role_value, council_id=council.id if council else None)
    user.set_password(password)
    session.add(user)
    session.flush()
    return user
