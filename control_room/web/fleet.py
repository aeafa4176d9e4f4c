"""Fleet page: every unit the user's council owns, online or not, each component's state, and a map.

The table and map are one fragment (`/fleet/live`) that the page re-fetches every few seconds, so a
unit turns online without a reload. Online/offline and badges come from control_room.fleet.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from flask import Blueprint, g, render_template, request, url_for
from sqlalchemy.orm import selectinload

from control_room import fleet, scope
from control_room.auth import require
from control_room.models import Deployment, Unit
from control_room.web import common
from control_room.web.cells import Cell, cells
from control_room.web.charts import MapPoint, MapView, plot_map

bp = Blueprint("fleet", __name__)
MAX_MAP_LABELS = 60


@dataclass
class FleetRow:
    unit: Unit
    status: fleet.UnitStatus
    cells: dict[str, Cell]
    deployment: Deployment | None


@dataclass(frozen=True)
class FleetFilter:
    """What the fleet table shows: one council (partnership admin), units needing attention, an id search."""

    council: int | None = None
    attention: bool = False
    search: str = ""

    @classmethod
    def from_request(cls) -> FleetFilter:
        return cls(
            council=request.args.get("council", type=int),
            attention=request.args.get("attention") == "1",
            search=request.args.get("q", "")[:64].strip(),
        )

    def args(self) -> dict[str, str]:
        out = {
            "council": self.council,
            "attention": "1" if self.attention else None,
            "q": self.search or None,
        }
        return {k: str(v) for k, v in out.items() if v is not None}


def fleet_rows(f: FleetFilter) -> list[FleetRow]:
    db = common.db()
    stmt = (
        scope.visible(db, Unit, g.user)
        .options(selectinload(Unit.deployments).selectinload(Deployment.site), selectinload(Unit.council))
        .order_by(Unit.unit_id)
    )
    if f.council is not None:
        stmt = stmt.where(Unit.council_id == f.council)
    if f.search:
        stmt = stmt.where(Unit.unit_id.contains(f.search.lower(), autoescape=True))
    now, settings = common.now(), common.settings()
    rows = [
        FleetRow(u, fleet.unit_status(u, now, settings), cells(u.last_state, now), fleet.active_deployment(u))
        for u in db.scalars(stmt)
    ]
    return [r for r in rows if r.status.needs_attention] if f.attention else rows


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
    if len(points) > MAX_MAP_LABELS:  # a crowded map shows dots; names are in the tooltips and the table
        for point in points:
            point.show_label = False
    return plot_map(points)


def _context() -> dict[str, Any]:
    f = FleetFilter.from_request()
    rows = fleet_rows(f)
    return {
        "rows": rows,
        "map": fleet_map(rows),
        "now": common.now(),
        "filters": f,
        "online": sum(r.status.online for r in rows),
        "attention": sum(r.status.needs_attention for r in rows),
    }


@bp.route("/")
@require("fleet")
def index() -> str:
    return render_template(
        "fleet/index.html",
        poll_ms=common.poll_ms(),
        councils=scope.councils(common.db(), g.user),
        **_context(),
    )


@bp.route("/fleet/live")
@require("fleet")
def live() -> str:
    return render_template("fleet/_live.html", **_context())
