"""Officers' views of a deployment and a site: edit them, record a review with its next due date, and
recover a unit only after confirming it. Coordinates can be picked on the street map.

Every change is audited with what it was before; a deployment edit or review moves its `updated_at`,
so live pages (the fleet's changes feed) pick it up. Bad input answers 400 naming the field, with
nothing stored.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, flash, g, redirect, render_template, request, url_for
from sqlalchemy import select

from control_room import audit, fleet, names, scope
from control_room.auth import require
from control_room.models import Deployment, DeploymentReview, Site
from control_room.web import common, forms, maps
from control_room.web.locations import open_deployment

bp = Blueprint("officer", __name__)

DEPLOYMENT_FIELDS = ("purpose", "dpia_ref", "signage_confirmed", "planned_end", "review_date")


def _today() -> Any:
    return common.now().astimezone(common.LONDON).date()


def _site_points(sites: list[Site]) -> list[dict[str, Any]]:
    return [maps.Point("site", f"site-{s.id}", s.name, s.lat, s.lon, "site",
                       url_for("locations.site", site_id=s.id)).as_json() for s in sites]


def _deployment_page(dep: Deployment, error: str | None = None, status: int = 200) -> tuple[str, int]:
    db = common.db()
    reviews = db.scalars(select(DeploymentReview).where(DeploymentReview.deployment_id == dep.id)
                         .order_by(DeploymentReview.id.desc())).all()
    unit = dep.unit
    distance = (fleet.distance_m(unit.lat, unit.lon, dep.site.lat, dep.site.lon)
                if unit.lat is not None and unit.lon is not None else None)
    return render_template(
        "locations/deployment.html", d=dep, reviews=reviews, error=error, today=_today(), distance=distance,
        flags=fleet.deployment_flags(dep, unit, _today(), far_m=common.gps_far_m()),
    ), status


@bp.route("/locations/deployments/<int:deployment_id>")
@require("fleet")
def deployment(deployment_id: int) -> Any:
    return _deployment_page(scope.get_or_404(common.db(), Deployment, g.user, id=deployment_id))


@bp.route("/locations/deployments/<int:deployment_id>/edit", methods=["POST"])
@require("locations")
def edit_deployment(deployment_id: int) -> Any:
    dep = open_deployment(deployment_id)
    try:
        planned_end = forms.local_datetime("planned_end", required=False)
        if planned_end is not None and planned_end <= dep.start:
            raise forms.FormError("planned end must be after the start")
        new = {
            "purpose": forms.text("purpose", 1000),
            "dpia_ref": names.check_display_name(request.form.get("dpia_ref", ""), "DPIA reference"),
            "signage_confirmed": request.form.get("signage_confirmed") == "yes",
            "planned_end": planned_end,
            "review_date": forms.day("review_date"),
        }
    except (forms.FormError, names.BadName) as exc:
        return _deployment_page(dep, str(exc), 400)
    changed = {k: v for k, v in new.items() if getattr(dep, k) != v}
    if not changed:
        flash("Nothing changed.", "info")
        return redirect(url_for("officer.deployment", deployment_id=dep.id), 303)
    before = {k: _plain(getattr(dep, k)) for k in changed}
    for key, value in changed.items():
        setattr(dep, key, value)
    dep.updated_at = common.now()
    db = common.db()
    after = {k: _plain(v) for k, v in changed.items()}
    audit.record(db, g.user, "deployment_edit", "unit", dep.unit.unit_id,
                 {"deployment": dep.id, "before": before, "after": after})
    db.commit()
    flash(f"Deployment of {dep.unit.unit_id} at {dep.site.name} updated: {', '.join(changed)}.", "info")
    return redirect(url_for("officer.deployment", deployment_id=dep.id), 303)


def _plain(value: Any) -> Any:
    return value.isoformat() if hasattr(value, "isoformat") else value


@bp.route("/locations/deployments/<int:deployment_id>/review", methods=["POST"])
@require("locations")
def review(deployment_id: int) -> Any:
    """Record a review (Surveillance Camera Code): the outcome, and when the next one is due."""
    dep = open_deployment(deployment_id)
    try:
        outcome = forms.text("outcome", 2000)
        next_date = forms.day("next_review_date")
        if next_date <= _today():
            raise forms.FormError("next review date must be after today")
    except forms.FormError as exc:
        return _deployment_page(dep, str(exc), 400)
    db = common.db()
    now = common.now()
    row = DeploymentReview(deployment_id=dep.id, at=now, user_id=g.user.id, username=g.user.username,
                           outcome=outcome, next_review_date=next_date)
    db.add(row)
    previous_due = dep.review_date
    dep.review_date = next_date
    dep.updated_at = now
    db.flush()
    audit.record(db, g.user, "deployment_review", "unit", dep.unit.unit_id,
                 {"deployment": dep.id, "review": row.id, "was_due": previous_due.isoformat(),
                  "next_due": next_date.isoformat(), "outcome": outcome[:500]}, at=now)
    db.commit()
    flash(f"Review recorded; the next is due {next_date.isoformat()}.", "info")
    return redirect(url_for("officer.deployment", deployment_id=dep.id), 303)


@bp.route("/locations/sites/<int:site_id>/edit", methods=["GET", "POST"])
@require("locations")
def edit_site(site_id: int) -> Any:
    db = common.db()
    place = scope.get_or_404(db, Site, g.user, id=site_id)
    if request.method == "GET":
        return _site_form(place)
    try:
        new = {
            "name": names.check_display_name(request.form.get("name", ""), "site name"),
            "address": forms.text("address", 500, required=False),
            "lat": forms.number("lat", -90, 90),
            "lon": forms.number("lon", -180, 180),
        }
    except (forms.FormError, names.BadName) as exc:
        return _site_form(place, str(exc), 400)
    clash = db.scalar(select(Site.id).where(Site.council_id == place.council_id, Site.name == new["name"],
                                            Site.id != place.id))
    if clash is not None:
        return _site_form(place, f"a site called {new['name']!r} already exists", 409)
    changed = {k: v for k, v in new.items() if getattr(place, k) != v}
    if changed:
        before = {k: getattr(place, k) for k in changed}
        for key, value in changed.items():
            setattr(place, key, value)
        now = common.now()
        for dep in db.scalars(select(Deployment).where(Deployment.site_id == place.id,
                                                       Deployment.recovered_at.is_(None))):
            dep.updated_at = now  # the units' distance flags may change
        audit.record(db, g.user, "site_edit", "site", str(place.id), {"before": before, "after": changed})
        db.commit()
    flash(f"Site {place.name} {'updated' if changed else 'unchanged'}.", "info")
    return redirect(url_for("locations.site", site_id=place.id), 303)


def _site_form(place: Site, error: str | None = None, status: int = 200) -> tuple[str, int]:
    from control_room.web.charts import MapPoint, plot_map

    view = plot_map([MapPoint("site", place.name, place.lat, place.lon, "site")])
    return render_template("locations/site_edit.html", site=place, error=error, map=view,
                           tiles=maps.tile_config(), map_points=_site_points([place])), status
