"""Inline SVG geometry for the pages: time-series charts of unit samples and an offline map of positions.

Pure functions: values in, coordinates and tick labels out; the templates draw them (no JavaScript,
no map tiles, nothing fetched from the internet).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

EARTH_RADIUS_M = 6_371_008.8


@dataclass
class Chart:
    title: str
    unit: str
    width: int = 480
    height: int = 160
    points: str = ""
    y_ticks: list[tuple[float, str]] = field(default_factory=list)
    x_ticks: list[tuple[float, str]] = field(default_factory=list)
    last: str = "no data"
    count: int = 0


PAD_LEFT, PAD_RIGHT, PAD_TOP, PAD_BOTTOM = 48, 8, 8, 20


def line_chart(
    title: str,
    unit: str,
    samples: Sequence[tuple[datetime, float | None]],
    scale: float = 1.0,
    digits: int = 0,
) -> Chart:
    """Scale (time, value) samples into the chart box; None values (unknown) are skipped."""
    chart = Chart(title=title, unit=unit)
    data = [(t, v * scale) for t, v in samples if v is not None]
    chart.count = len(data)
    if not data:
        return chart
    t0, t1 = data[0][0].timestamp(), data[-1][0].timestamp()
    lo, hi = min(v for _, v in data), max(v for _, v in data)
    if hi - lo < 1e-9:
        lo, hi = lo - 1, hi + 1
    inner_w = chart.width - PAD_LEFT - PAD_RIGHT
    inner_h = chart.height - PAD_TOP - PAD_BOTTOM

    def x(ts: float) -> float:
        return PAD_LEFT + (inner_w * (ts - t0) / (t1 - t0) if t1 > t0 else inner_w)

    def y(value: float) -> float:
        return PAD_TOP + inner_h * (1 - (value - lo) / (hi - lo))

    chart.points = " ".join(f"{x(t.timestamp()):.1f},{y(v):.1f}" for t, v in data)
    chart.y_ticks = [(y(v), f"{v:.{digits}f}") for v in (lo, (lo + hi) / 2, hi)]
    chart.x_ticks = [
        (x(t0), data[0][0].strftime("%d %b %H:%M")),
        (x(t1), data[-1][0].strftime("%d %b %H:%M")),
    ]
    chart.last = f"{data[-1][1]:.{digits}f} {unit}"
    return chart


@dataclass
class MapPoint:
    kind: str  # "unit" or "site"
    label: str
    lat: float
    lon: float
    css: str = ""
    href: str = ""
    show_label: bool = True
    x: float = 0.0
    y: float = 0.0


@dataclass
class MapView:
    width: int
    height: int
    points: list[MapPoint]
    scale_label: str = ""
    scale_px: float = 0.0


def plot_map(points: list[MapPoint], width: int = 640, height: int = 360, pad: int = 30) -> MapView:
    """Equirectangular projection fitted to the points (fine at town scale), with a scale bar."""
    view = MapView(width=width, height=height, points=points)
    if not points:
        return view
    lats = [p.lat for p in points]
    lons = [p.lon for p in points]
    mid_lat = (min(lats) + max(lats)) / 2
    kx = math.cos(math.radians(mid_lat))
    span_x = max((max(lons) - min(lons)) * kx, 0.002)
    span_y = max(max(lats) - min(lats), 0.002)
    px_per_deg = min((width - 2 * pad) / span_x, (height - 2 * pad) / span_y)
    cx, cy = (min(lons) + max(lons)) / 2, mid_lat
    for p in points:
        p.x = width / 2 + (p.lon - cx) * kx * px_per_deg
        p.y = height / 2 - (p.lat - cy) * px_per_deg
    metres_per_px = (math.pi / 180) * EARTH_RADIUS_M / px_per_deg
    target = metres_per_px * width / 5
    nice = 10 ** math.floor(math.log10(target))
    for step in (1, 2, 5, 10):
        if nice * step >= target:
            nice *= step
            break
    view.scale_px = nice / metres_per_px
    view.scale_label = f"{nice / 1000:g} km" if nice >= 1000 else f"{nice:g} m"
    return view
