"""Unit page: one unit's current state, its deployment history and charts of its heartbeat samples.

Samples come from HeartbeatSample rows (written by the heartbeat API at most every sample_interval_s).
"""

from __future__ import annotations

from datetime import timedelta

from flask import Blueprint, g, render_template, request
from sqlalchemy import select

from control_room import fleet, scope
from control_room.auth import require
from control_room.models import HeartbeatSample, Unit
from control_room.web import common
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
    return [
        line_chart("Signal", "%", [(s.at, s.signal_percent) for s in samples]),
        line_chart(
            "Disk free", "GB", [(s.at, s.disk_free_bytes) for s in samples], scale=1 / 1024**3, digits=1
        ),
        line_chart("Upload queue", "clips", [(s.at, s.queue_depth) for s in samples]),
        line_chart("CPU temperature", "°C", [(s.at, s.cpu_temp_c) for s in samples], digits=1),
    ]


@bp.route("/units/<unit_id>")
@require("fleet")
def page(unit_id: str) -> str:
    unit = scope.get_or_404(common.db(), Unit, g.user, unit_id=unit_id)
    days = request.args.get("days", 7, type=int)
    days = days if days in CHART_DAYS else 7
    status = fleet.unit_status(unit, common.now(), common.settings())
    state = unit.last_state if isinstance(unit.last_state, dict) else {}
    return render_template(
        "units/page.html",
        unit=unit,
        status=status,
        state=state,
        days=days,
        cells=cells(unit.last_state, common.now()),
        chart_days=CHART_DAYS,
        charts=unit_charts(unit, days),
    )
