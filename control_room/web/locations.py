"""Locations: sites, and which unit is deployed where, for what purpose and until when.

Officers create sites and deploy, move and recover units (Surveillance Camera Code: purpose, DPIA,
signage, review date); overdue reviews and units whose GPS is far from their site are flagged.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

from flask import Blueprint, abort, flash, g, redirect, render_template, request, url_for
from sqlalchemy.orm import selectinload

from control_room import audit, deployments, fleet, names, scope
from control_room.auth import require
from control_room.errors import DeploymentError
from control_room.models import Council, Deployment, Site, Unit
from control_room.web import common, forms, maps
from control_room.web.charts import MapPoint, plot_map

bp = Blueprint("locations", __name__)


@dataclass
class DeploymentRow:
    deployment: Deployment
    flags: list[fleet.Badge]


def _today() -> date:
    return common.now().astimezone(common.LONDON).date()


def _flags(dep: Deployment) -> list[fleet.Badge]:
    return fleet.deployment_flags(dep, dep.unit, _today(), far_m=common.gps_far_m())


def _page(error: str | None = None, status: int = 200) -> tuple[str, int]:
    db = common.db()
    sites = list(
        db.scalars(scope.visible(db, Site, g.user).options(selectinload(Site.council)).order_by(Site.name))
    )
    units = list(
        db.scalars(
            scope.visible(db, Unit, g.user)
            .options(selectinload(Unit.deployments).selectinload(Deployment.site))
            .order_by(Unit.unit_id)
        )
    )
    active = [DeploymentRow(d, _flags(d)) for u in units if (d := fleet.active_deployment(u)) is not None]
    idle = [u for u in units if fleet.active_deployment(u) is None and u.revoked_at is None]
    points = [maps.Point("site", f"site-{s.id}", s.name, s.lat, s.lon, "site",
                         url_for("locations.site", site_id=s.id)).as_json() for s in sites]
    return render_template(
        "locations/index.html",
        map=plot_map([MapPoint("site", s.name, s.lat, s.lon, "site") for s in sites]),
        map_points=points,
        tiles=maps.tile_config(),
        sites=sites,
        active=active,
        idle=idle,
        error=error,
        councils=scope.councils(db, g.user),
        today=_today(),
        flagged=sum(bool(r.flags) for r in active),
    ), status


@bp.route("/locations")
@require("fleet")
def index() -> Any:
    return _page()


@bp.route("/locations/sites/<int:site_id>")
@require("fleet")
def site(site_id: int) -> Any:
    db = common.db()
    place = scope.get_or_404(db, Site, g.user, id=site_id)
    history = list(
        db.scalars(
            scope.visible(db, Deployment, g.user)
            .where(Deployment.site_id == place.id)
            .options(selectinload(Deployment.unit))
            .order_by(Deployment.start.desc())
        )
    )
    rows = [DeploymentRow(d, _flags(d)) for d in history]
    return render_template("locations/site.html", site=place, rows=rows)


def _council_for_new_site() -> int:
    if not g.user.partnership_wide:
        return g.user.council_id
    council_id = request.form.get("council_id", 0, type=common.db_int)
    council = scope.get_or_404(common.db(), Council, g.user, id=council_id)
    return council.id


@bp.route("/locations/sites", methods=["POST"])
@require("locations")
def create_site() -> Any:
    db = common.db()
    try:
        name = names.check_display_name(request.form.get("name", ""), "site name")
        place = Site(
            council_id=_council_for_new_site(),
            name=name,
            address=forms.text("address", 500, required=False),
            lat=forms.number("lat", -90, 90),
            lon=forms.number("lon", -180, 180),
            created_by_id=g.user.id,
        )
    except (forms.FormError, names.BadName) as exc:
        return _page(str(exc), 400)
    if db.scalar(
        scope.visible(db, Site, g.user).where(Site.council_id == place.council_id, Site.name == name)
    ):
        return _page(f"a site called {name!r} already exists", 409)
    db.add(place)
    db.flush()
    audit.record(
        db, g.user, "site_create", "site", str(place.id), {"name": name, "lat": place.lat, "lon": place.lon}
    )
    db.commit()
    flash(f"Site {name} created.", "info")
    return redirect(url_for("locations.index"), 303)


def _deployment_fields(unit: Unit) -> dict[str, Any]:
    site_id = request.form.get("site_id", 0, type=common.db_int)
    place = scope.get_or_404(common.db(), Site, g.user, id=site_id)
    if place.council_id != unit.council_id:
        raise forms.FormError("the site belongs to another council than the unit")
    start = forms.local_datetime("start", required=False) or common.now()
    planned_end = forms.local_datetime("planned_end", required=False)
    return {
        "site_id": place.id,
        "purpose": forms.text("purpose", 1000),
        "dpia_ref": names.check_display_name(request.form.get("dpia_ref", ""), "DPIA reference"),
        "signage_confirmed": request.form.get("signage_confirmed") == "yes",
        "start": start,
        "planned_end": planned_end,
        "review_date": forms.day("review_date"),
    }


def _save_deployment(unit: Unit, action: str, previous: Deployment | None) -> Any:
    db = common.db()
    try:
        fields = _deployment_fields(unit)
    except (forms.FormError, names.BadName) as exc:
        return _page(str(exc), 400)
    try:
        deployments.check_new(db, unit, fields["start"], fields["planned_end"], replacing=previous)
    except DeploymentError as exc:
        return _page(str(exc), exc.status)
    if previous is not None:
        previous.recovered_at = fields["start"]
    dep = Deployment(unit_pk=unit.id, created_by_id=g.user.id, created_at=common.now(), **fields)
    db.add(dep)
    db.flush()
    audit.record(
        db,
        g.user,
        action,
        "unit",
        unit.unit_id,
        {"deployment": dep.id, "site_id": dep.site_id, "previous": previous.id if previous else None},
    )
    db.commit()
    flash(f"Unit {unit.unit_id} {'moved' if previous else 'deployed'}.", "info")
    return redirect(url_for("locations.index"), 303)


@bp.route("/locations/deploy", methods=["POST"])
@require("locations")
def deploy() -> Any:
    unit = scope.get_or_404(common.db(), Unit, g.user, unit_id=request.form.get("unit_id", ""))
    if fleet.active_deployment(unit) is not None:
        return _page(f"unit {unit.unit_id} is already deployed: move or recover it", 409)
    return _save_deployment(unit, "deploy", None)


def open_deployment(deployment_id: int) -> Deployment:
    """A deployment the user's councils may see that has not ended (404 / 409 otherwise)."""
    dep = scope.get_or_404(common.db(), Deployment, g.user, id=deployment_id)
    if dep.recovered_at is not None:
        abort(409, description="this deployment has ended: it can no longer be changed")
    return dep


@bp.route("/locations/deployments/<int:deployment_id>/move", methods=["POST"])
@require("locations")
def move(deployment_id: int) -> Any:
    dep = open_deployment(deployment_id)
    return _save_deployment(dep.unit, "move", dep)


@bp.route("/locations/deployments/<int:deployment_id>/recover", methods=["POST"])
@require("locations")
def recover(deployment_id: int) -> Any:
    dep = open_deployment(deployment_id)
    if request.form.get("confirm") != "yes":
        return _page(f"recovering {dep.unit.unit_id} needs confirming (the box on its deployment page)", 400)
    db = common.db()
    try:
        deployments.check_recover(dep, common.now())
    except DeploymentError as exc:
        return _page(str(exc), exc.status)
    dep.recovered_at = common.now()
    audit.record(
        db, g.user, "recover", "unit", dep.unit.unit_id, {"deployment": dep.id, "site_id": dep.site_id}
    )
    db.commit()
    flash(f"Unit {dep.unit.unit_id} recovered from {dep.site.name}.", "info")
    return redirect(url_for("locations.index"), 303)
