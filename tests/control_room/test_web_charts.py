"""Pure helpers of the web pages: chart geometry, the offline map, heartbeat cells, UK local time."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from control_room.web.cells import cells
from control_room.web.charts import MapPoint, line_chart, plot_map
from control_room.web.common import local_time
from tests.control_room.web_fixtures import heartbeat_body

T0 = datetime(2026, 11, 18, 10, 0, tzinfo=UTC)


def test_line_chart_skips_unknown_values_and_spans_the_box() -> None:
    samples = [(T0 + timedelta(minutes=i), v) for i, v in enumerate([10, None, 30, 20])]
    chart = line_chart("Signal", "%", samples)
    points = [tuple(map(float, p.split(","))) for p in chart.points.split()]
    assert chart.count == 3 and len(points) == 3
    xs, ys = [p[0] for p in points], [p[1] for p in points]
    assert xs == sorted(xs) and xs[0] == 48 and xs[-1] == chart.width - 8
    assert max(ys) == chart.height - 20 and min(ys) == 8  # lowest value at the bottom, highest at the top
    assert chart.last == "20 %" and [label for _, label in chart.y_ticks] == ["10", "20", "30"]


def test_line_chart_of_nothing_and_of_a_constant() -> None:
    assert line_chart("x", "u", []).points == ""
    flat = line_chart("x", "u", [(T0, 5.0), (T0 + timedelta(minutes=1), 5.0)])
    assert flat.points and [label for _, label in flat.y_ticks] == ["4", "5", "6"]


def test_map_keeps_geometry_and_gives_a_scale() -> None:
    a = MapPoint("unit", "a", 51.7000, -0.2800)
    b = MapPoint("site", "b", 51.7100, -0.2800)  # 1.11 km north of a
    view = plot_map([a, b], width=640, height=360)
    assert a.x == pytest.approx(b.x) and b.y < a.y  # north is up
    metres_per_px = 1112.0 / (a.y - b.y)
    assert view.scale_px * metres_per_px == pytest.approx(
        float(view.scale_label.split()[0]) * (1000 if view.scale_label.endswith("km") else 1), rel=0.01
    )
    assert all(0 <= p.x <= 640 and 0 <= p.y <= 360 for p in (a, b))


def test_cells_read_a_heartbeat() -> None:
    state = heartbeat_body(
        "u-1",
        disk={
            "total_bytes": 100,
            "free_bytes": 2,
            "retention_days": 31,
            "oldest_footage_at": "2026-11-08T10:00:00Z",
            "events_lost": 0,
        },
        clock={"synced": False},
        modem={"signal_percent": 12},
    )
    out = cells(state, T0)
    assert out["camera"].text == "ok 10 fps" and out["camera"].level == "ok"
    assert out["disk"].text.startswith("10.0 d of 31 d") and out["disk"].level == "warn"
    assert out["clock"].level == "bad" and out["signal"].level == "warn"
    assert {c.text for c in cells(None, T0).values()} == {"?"}


def test_times_are_shown_in_uk_local_time() -> None:
    assert local_time(datetime(2026, 7, 1, 12, 0, tzinfo=UTC)) == "2026-07-01 13:00:00 BST"
    assert local_time(datetime(2026, 11, 18, 12, 0, tzinfo=UTC)) == "2026-11-18 12:00:00 GMT"
    assert local_time(None) == "-"


def test_motion_boxes_are_clipped_and_malformed_ones_dropped() -> None:
    from control_room.models import Event
    from control_room.web.events import motion_boxes

    event = Event(
        boxes=[[0.1, 0.2, 0.05, 0.1], [0.9, 0.9, 0.5, 0.5], [1, 2], ["<svg>", 0, 0, 0], [True, 0, 0, 0]]
    )
    assert motion_boxes(event) == [(0.1, 0.2, 0.05, 0.1), (0.9, 0.9, 0.1, 0.1)]
