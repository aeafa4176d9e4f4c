"""The rules that keep a unit's deployment history possible: no end before its start, no two
deployments of one unit at once, no revoked unit deployed. Checked on every way in (web form, POST).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from control_room.errors import DeploymentError
from control_room.models import Deployment, Unit


def _when(ts: datetime) -> str:
    return ts.strftime("%Y-%m-%d %H:%M UTC")


def check_new(session: Session, unit: Unit, start: datetime, planned_end: datetime | None,
              replacing: Deployment | None = None) -> None:
    """Refuse (DeploymentError) a deployment of `unit` from `start` that history cannot hold.

    `replacing` is the deployment a move ends at `start`.
    """
    if unit.revoked_at is not None:
        raise DeploymentError(f"unit {unit.unit_id} is revoked: it cannot be deployed")
    if planned_end is not None and planned_end <= start:
        raise DeploymentError("planned end must be after the start", 400)
    if replacing is not None and start < replacing.start:
        raise DeploymentError(f"a move must be dated after the current deployment began "
                              f"({_when(replacing.start)})")
    others = select(Deployment).where(Deployment.unit_pk == unit.id)
    if replacing is not None:
        others = others.where(Deployment.id != replacing.id)
    for other in session.scalars(others):
        ends_after = other.recovered_at is None or other.recovered_at > start
        if ends_after or other.start >= start:
            until = f"until {_when(other.recovered_at)}" if other.recovered_at else "still open"
            raise DeploymentError(f"unit {unit.unit_id} has another deployment from "
                                  f"{_when(other.start)} ({until}) that this one would overlap")


def check_recover(deployment: Deployment, at: datetime) -> None:
    if deployment.recovered_at is not None:
        raise DeploymentError("this deployment has already ended")
    if at < deployment.start:
        raise DeploymentError(f"a deployment cannot end before it began ({_when(deployment.start)})")
