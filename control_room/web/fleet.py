"""Fleet page: every unit the user's council owns, online or not, each component's state, and a map.

The page asks `/fleet/changes?t=<cursor>` every few seconds and gets only the rows of units that
changed since (a heartbeat, going offline, a deployment edit), the summary line and their map points;
`/fleet/live` (the whole table) is fetched only to resynchronise. Status and badges come from
control_room.fleet; relative ages ("40 s ago") count up in the browser.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from flask import Blueprint, g, jsonify, render_template, request, url_for
from sqlalchemy import and_, or_, select
from sqlalchemy.orm import Session, joinedload, selectinload

from control_room import fleet, scope
from control_room.auth import require
from control_room.models import Deployment, Unit
from control_room.web import common, maps
from control_room.web.cells import Cell, cells
from control_room.web.charts import MapPoint, MapView, plot_map

bp = Blueprint("fleet", __name__)
MAX_MAP_LABELS = 60
PAGE_SIZE = 200  # rows per page: a partnership's fleet page stays small enough to refresh every few seconds
# A heartbeat stamped just before the last poll but committed just after it is not missed (the cost:
# rows of heartbeats in the last half second before a poll are sent twice).
CHANGE_OVERLAP = timedelta(seconds=0.5)


@dataclass
class FleetRow:
    unit: Unit
    status: fleet.UnitStatus
    cells: dict[str, Cell]
    deployment: Deployment | None
    flags: list[fleet.Badge] = field(default_factory=list)


@dataclass(frozen=True)
class FleetFilter:
    """What the fleet table shows: one council (partnership admin), units needing attention, an id search."""

    council: int | None = None
    attention: bool = False
    search: str = ""
    page: int = 1

    @classmethod
    def from_request(cls) -> FleetFilter:
        return cls(
            council=request.args.get("council", type=common.db_int),
            attention=request.args.get("attention") == "1",
            search=request.args.get("q", "")[:64].strip(),
            page=max(1, request.args.get("page", 1, type=common.db_int)),
        )

    def args(self, page: int | None = None) -> dict[str, str]:
        page = self.page if page is None else page
        out = {
            "council": self.council,
            "attention": "1" if self.attention else None,
            "q": self.search or None,
            "page": page if page > 1 else None,
        }
        return {k: str(v) for k, v in out.items() if v is not None}


def fleet_rows(f: FleetFilter) -> list[FleetRow]:
    db = common.db()
    stmt = scope.visible(db, Unit, g.user).order_by(Unit.unit_id)
    if g.user.partnership_wide:
        stmt = stmt.options(selectinload(Unit.council))
    if f.council is not None:
        stmt = stmt.where(Unit.council_id == f.council)
    if f.search:
        stmt = stmt.where(Unit.unit_id.contains(f.search.lower(), autoescape=True))
    units = db.scalars(stmt).all()
    active = _active_deployments(db)
    now, settings = common.now(), common.settings()
    today = now.astimezone(common.LONDON).date()
    rows = []
    for u in units:
        dep = active.get(u.id)
        flags = fleet.deployment_flags(dep, u, today, far_m=common.gps_far_m()) if dep is not None else []
        rows.append(FleetRow(u, fleet.unit_status(u, now, settings), cells(u.last_state, now), dep, flags))
    if f.attention:
        rows = [r for r in rows if r.status.needs_attention]
    return sorted(rows, key=_worst_first)


def _active_deployments(db: Session) -> dict[int, Deployment]:
    """Each visible unit's open deployment with its site, in one query (not every unit's history)."""
    stmt = (
        scope.visible(db, Deployment, g.user)
        .where(Deployment.recovered_at.is_(None))
        .options(joinedload(Deployment.site))
        .order_by(Deployment.start)
    )
    return {d.unit_pk: d for d in db.scalars(stmt)}  # the newest open one wins


def _worst_first(row: FleetRow) -> tuple[int, str]:
    """Alarms first, then warnings, then healthy units; by unit id within each."""
    severities = {b.severity for b in row.status.badges}
    rank = 0 if "alarm" in severities else 1 if severities else 2
    return rank, row.unit.unit_id


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
        if (position := fleet.map_position(row.unit)) is not None:  # an implausible fix stays off the map
            points.append(
                MapPoint(
                    "unit",
                    row.unit.unit_id,
                    *position,
                    "online" if row.status.online else "offline",
                    url_for("units.page", unit_id=row.unit.unit_id),
                )
            )
    if len(points) > MAX_MAP_LABELS:  # a crowded map shows dots; names are in the tooltips and the table
        for point in points:
            point.show_label = False
    return plot_map(points)


def unit_state(row: FleetRow) -> str:
    """The marker colour: offline, needs attention, or online and well."""
    if not row.status.online:
        return "offline"
    return "attention" if row.status.needs_attention else "online"


def map_points(rows: list[FleetRow]) -> list[dict[str, Any]]:
    """The street map's markers: each unit with a position, and each site a shown unit is deployed at."""
    out: list[dict[str, Any]] = []
    seen_sites: set[int] = set()
    for row in rows:
        dep = row.deployment
        if dep is not None and dep.site_id not in seen_sites:
            seen_sites.add(dep.site_id)
            out.append(maps.Point("site", f"site-{dep.site_id}", dep.site.name, dep.site.lat, dep.site.lon,
                                  "site", url_for("locations.site", site_id=dep.site_id)).as_json())
        if (position := fleet.map_position(row.unit)) is not None:  # an implausible fix stays off the map
            out.append(maps.Point("unit", row.unit.unit_id, row.unit.unit_id, *position,
                                  unit_state(row), url_for("units.page", unit_id=row.unit.unit_id)).as_json())
    return out


def _context() -> dict[str, Any]:
    f = FleetFilter.from_request()
    rows = fleet_rows(f)
    pages = max(1, -(-len(rows) // PAGE_SIZE))
    page = min(f.page, pages)
    shown = rows[(page - 1) * PAGE_SIZE : page * PAGE_SIZE]
    return {
        "rows": shown,
        "total": len(rows),
        "page": page,
        "pages": pages,
        "map": fleet_map(shown),
        "points": map_points(shown),
        "tiles": maps.tile_config(),
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
    """The whole table, its summary and map points: for a page that has to resynchronise."""
    return render_template("fleet/_live.html", **_context())


def _cursor(text: str | None) -> datetime | None:
    try:
        return common.to_utc(datetime.fromisoformat(text or ""))
    except ValueError:
        return None


def changed_units(since: datetime, now: datetime) -> set[int]:
    """Visible units whose row may read differently than at `since`: a heartbeat arrived, the unit
    went offline (its last heartbeat crossed the offline limit) or was revoked, or one of its
    deployments was made, edited, reviewed or ended. (A new unit shows once it first reports.)"""
    db = common.db()
    lo = since - CHANGE_OVERLAP
    off = timedelta(seconds=common.settings().offline_after_s())
    deployments = select(Deployment.unit_pk).where(
        or_(Deployment.created_at >= lo, Deployment.updated_at >= lo, Deployment.recovered_at >= lo)
    )
    stmt = scope.visible(db, Unit, g.user).with_only_columns(Unit.id).where(
        or_(
            Unit.last_seen_at >= lo,
            and_(Unit.last_seen_at >= lo - off, Unit.last_seen_at <= now - off),
            Unit.revoked_at >= lo,
            Unit.id.in_(deployments),
        )
    )
    return set(db.scalars(stmt))


@bp.route("/fleet/changes")
@require("fleet")
def changes() -> Any:
    """Only what changed since the cursor `t`: the changed units' rows (`rows`, by unit pk; `hide` for
    those no longer matching the filters), the summary line and their map points. Nothing changed:
    a few bytes. No or a bad cursor: `resync` (fetch /fleet/live)."""
    now = common.now()
    since = _cursor(request.args.get("t"))
    if since is None:
        return jsonify(t=now.isoformat(), resync=True)
    changed = changed_units(since, now)
    if not changed:
        return jsonify(t=now.isoformat())
    context = _context()
    shown = {row.unit.id: row for row in context["rows"]}
    rows = {
        str(pk): render_template("fleet/_row.html", row=shown[pk], **context) for pk in changed if pk in shown
    }
    moved = [shown[pk] for pk in changed if pk in shown]
    return jsonify(
        t=now.isoformat(),
        rows=rows,
        hide=[str(pk) for pk in changed if pk not in shown],
        summary=render_template("fleet/_summary.html", **context),
        points=map_points(moved),
    )
