"""Council scope: every query for units, events, sites and deployments goes through here.

A council's people see only their council's items; a partnership-wide admin sees every council.
An item of another council answers 404, exactly like an item that does not exist.
"""

from __future__ import annotations

from typing import Any, TypeVar

from flask import abort
from sqlalchemy import Select, false, select
from sqlalchemy.orm import Session

from control_room.models import Council, Deployment, Event, Site, Unit, User

T = TypeVar("T")

# The column that says which council owns each scoped model.
_COUNCIL_COLUMN: dict[type, Any] = {
    Unit: Unit.council_id,
    Event: Event.council_id,
    Site: Site.council_id,
    Council: Council.id,
}


def council_ids(user: User) -> list[int] | None:
    """None = every council (partnership-wide admin); else the one council of the user (or none)."""
    if user.partnership_wide:
        return None
    return [user.council_id] if user.council_id is not None else []


def scoped(stmt: Select[Any], model: type, user: User) -> Select[Any]:
    """Add the council filter for `model` to a select; a user with no council sees nothing."""
    ids = council_ids(user)
    if ids is None:
        return stmt
    if not ids:
        return stmt.where(false())
    if model is Deployment:
        return stmt.join(Unit, Deployment.unit_pk == Unit.id).where(Unit.council_id == ids[0])
    return stmt.where(_COUNCIL_COLUMN[model] == ids[0])


def visible(db: Session, model: type[T], user: User) -> Select[Any]:
    return scoped(select(model), model, user)


def get_or_404(db: Session, model: type[T], user: User, **where: Any) -> T:
    """One item by its columns (e.g. id=3 or unit_id="x") if the user's council owns it, else 404."""
    stmt = visible(db, model, user)
    for name, value in where.items():
        stmt = stmt.where(getattr(model, name) == value)
    item = db.scalars(stmt).first()
    if item is None:
        abort(404)
    return item


def councils(db: Session, user: User) -> list[Council]:
    return list(db.scalars(scoped(select(Council), Council, user).order_by(Council.name)))
