"""The append-only audit trail: who viewed or downloaded which footage, who logged in, who deployed what.

Called by the web views in the same transaction as the work they record; rows are never updated
or deleted (the database refuses it, see the migrations).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from control_room import clock
from control_room.models import AuditLog, User


def record(
    db: Session,
    user: User | None,
    action: str,
    item_type: str,
    item_id: str,
    detail: dict[str, Any] | None = None,
    at: datetime | None = None,
    actor: str = "",
) -> AuditLog:
    """Add one audit row to the session (the caller commits with its own work).

    `actor` names who acted when it was not a person (e.g. "unit:herts-mcu-001").
    """
    row = AuditLog(
        at=at or clock.now(db),
        user_id=user.id if user is not None else None,
        username=user.username if user is not None else actor[:64],
        action=action,
        item_type=item_type,
        item_id=str(item_id)[:128],
        detail=detail or {},
    )
    db.add(row)
    return row
