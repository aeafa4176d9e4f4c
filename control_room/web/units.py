"""Unit page: one unit's current state, its deployment history, charts of its heartbeat samples, and
requests for the unit's continuous footage of a time range (an upload_range instruction).

Samples come from HeartbeatSample rows (written by the heartbeat API at most every sample_interval_s).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from flask import Blueprint, flash, g, redirect, render_template, request, url_for
from sqlalchemy import select

from control_room import audit, fleet, instructions, scope
from control_room.auth import require
from control_room.models import HeartbeatSample, Instruction, Unit
from control_room.web import common, forms
from control_room.web.cells import cells
from control_room.web.charts import Chart, line_chart

bp = Blueprint("units", __name__)

CHART_DAYS = (1, 7, 30)
MAX_SAMPLES = 2000


def unit_charts(unit: Unit, days: int) -> list[Chart]:
    since = common.now() - timedelta(days=days)
    stmt = (
        select(HeartbeatSample)
        .where(HeartbeatSample.unit_pk == unit.id, HeartbeatSample.at >= since)
        .order_by(HeartbeatSample.at.desc())
        .limit(MAX_SAMPLES)
    )
    samples = list(reversed(common.db().scalars(stmt).all()))
    settings = common.settings()
    shape: dict[str, Any] = {
        "window": (since, common.now()),
        # no sample for three intervals (of samples or heartbeats): the unit was silent, draw a gap
        "gap_s": 3 * max(settings.sample_interval_s, settings.heartbeat_interval_s),
    }
    return [
        line_chart("Signal", "%", [(s.at, s.signal_percent) for s in samples], **shape),
        line_chart("Disk free", "GB", [(s.at, s.disk_free_bytes) for s in samples], scale=1 / 1024**3,
                   digits=1, **shape),
        line_chart("Upload queue", "clips", [(s.at, s.queue_depth) for s in samples], **shape),
        line_chart("CPU temperature", "°C", [(s.at, s.cpu_temp_c) for s in samples], digits=1, **shape),
    ]


def _state_context(unit: Unit) -> dict[str, Any]:
    """What the unit page's refreshing part shows: state, health, deployment with flags, instructions."""
    now = common.now()
    status = fleet.unit_status(unit, now, common.settings())
    deployment = fleet.active_deployment(unit)
    flags = []
    if deployment is not None:
        today = now.astimezone(common.LONDON).date()
        flags = fleet.deployment_flags(deployment, unit, today, far_m=common.gps_far_m())
    recent = (
        select(Instruction).where(Instruction.unit_pk == unit.id).order_by(Instruction.id.desc()).limit(10)
    )
    return {
        "unit": unit,
        "status": status,
        "state": unit.last_state if isinstance(unit.last_state, dict) else {},
        "cells": cells(unit.last_state, now),
        "deployment": deployment,
        "flags": flags,
        "site_distance": _site_distance(unit, deployment),
        "instructions": common.db().scalars(recent).all(),
        "now": now,
    }


def _site_distance(unit: Unit, deployment: Any) -> float | None:
    if deployment is None or unit.lat is None or unit.lon is None:
        return None
    return fleet.distance_m(unit.lat, unit.lon, deployment.site.lat, deployment.site.lon)


@bp.route("/units/<unit_id>")
@require("fleet")
def page(unit_id: str) -> str:
    unit = scope.get_or_404(common.db(), Unit, g.user, unit_id=unit_id)
    days = request.args.get("days", 7, type=int)
    days = days if days in CHART_DAYS else 7
    return render_template(
        "units/page.html",
        days=days,
        chart_days=CHART_DAYS,
        charts=unit_charts(unit, days),
        poll_ms=common.poll_ms(),
        **_state_context(unit),
    )


@bp.route("/units/<unit_id>/live")
@require("fleet")
def live(unit_id: str) -> str:
    """The unit page's state, health, deployment and instructions, re-fetched every few seconds."""
    unit = scope.get_or_404(common.db(), Unit, g.user, unit_id=unit_id)
    return render_template("units/_state.html", **_state_context(unit))


@bp.route("/units/<unit_id>/request-upload", methods=["POST"])
@require("footage")
def request_upload(unit_id: str) -> Any:
    """Ask the unit for its continuous footage of a time range; carried by the next heartbeat answer."""
    db = common.db()
    unit = scope.get_or_404(db, Unit, g.user, unit_id=unit_id)
    try:
        start, end = forms.local_datetime("start"), forms.local_datetime("end")
        row = instructions.request_upload_range(db, unit, start, end, g.user)
    except (forms.FormError, instructions.InstructionError) as exc:
        flash(f"Footage not requested: {exc}", "error")
        return redirect(url_for("units.page", unit_id=unit.unit_id), 303)
    audit.record(
        db, g.user, "upload_request", "unit", unit.unit_id, {"instruction": row.instruction_id, **row.params}
    )
    db.commit()
    flash(
        f"Asked {unit.unit_id} for its footage from {common.local_time(start)} to {common.local_time(end)}.",
        "info",
    )
    return redirect(url_for("units.page", unit_id=unit.unit_id), 303)
