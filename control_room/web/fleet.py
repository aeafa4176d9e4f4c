"""Fleet page: every unit the user's council owns, online or not, each component's state, and a map.

The table and map are one fragment (`/fleet/live`) that the page re-fetches every few seconds, so a
unit turns online without a reload. Online/offline and badges come from control_room.fleet.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from flask import Blueprint, g, render_template, url_for
from sqlalchemy.orm import selectinload

from control_room import fleet, scope
from control_room.auth import require
from control_room.models import Deployment, Unit
from control_room.web import common
from control_room.web.cells import Cell, cells
from control_room.web.charts import MapPoint, MapView, plot_map

bp = Blueprint("fleet", __name__)


@dataclass
class FleetRow:
    unit: Unit
    status: fleet.UnitStatus
    cells: dict[str, Cell]
    deployment: Deployment | None


def fleet_rows() -> list[FleetRow]:
    db = common.db()
    stmt = (
        scope.visible(db, Unit, g.user)
        .options(selectinload(Unit.deployments).selectinload(Deployment.site), selectinload(Unit.council))
        .order_by(Unit.unit_id)
    )
    now, settings = common.now(), common.settings()
    return [
        FleetRow(u, fleet.unit_status(u, now, settings), cells(u.last_state, now), fleet.active_deployment(u))
        for u in db.scalars(stmt)
    ]


def fleet_map(rows: list[FleetRow]) -> MapView:
    points: list[MapPoint] = []
    seen_sites: set[int] = set()
    for row in rows:
        dep = row.deployment
        if dep is not None and dep.site_id not in seen_sites:
            seen_sites.add(dep.site_id)
            points.append(
                MapPoint(
                    "site",
                    dep.site.name,
                    dep.site.lat,
                    dep.site.lon,
                    "site",
                    url_for("locations.site", site_id=dep.site_id),
                )
            )
        if row.unit.lat is not None and row.unit.lon is not None:
            points.append(
                MapPoint(
                    "unit",
                    row.unit.unit_id,
                    row.unit.lat,
                    row.unit.lon,
                    "online" if row.status.online else "offline",
                    url_for("units.page", unit_id=row.unit.unit_id),
                )
            )
    return plot_map(points)


def _context() -> dict[str, Any]:
    rows = fleet_rows()
    return {
        "rows": rows,
        "map": fleet_map(rows),
        "now": common.now(),
        "online": sum(r.status.online for r in rows),
        "attention": sum(r.status.needs_attention for r in rows),
    }


@bp.route("/")
@require("fleet")
def index() -> str:
    return render_template("fleet/index.html", poll_ms=common.poll_ms(), **_context())


@bp.route("/fleet/live")
@require("fleet")
def live() -> str:
    return render_template("fleet/_live.html", **_context())
