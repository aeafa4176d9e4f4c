"""Inline SVG geometry for the pages: time-series charts of unit samples and an offline map of positions.

Pure functions: values in, coordinates and tick labels out; the templates draw them (no JavaScript,
no map tiles, nothing fetched from the internet). A chart breaks its line where samples are missing
(a unit offline draws a gap, not a straight line across the outage) and labels its time axis at
round local times.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

LONDON = ZoneInfo("Europe/London")
TICK_STEPS_S = (900, 1800, 3600, 2 * 3600, 3 * 3600, 6 * 3600, 12 * 3600, 86400, 2 * 86400, 7 * 86400)
MAX_X_TICKS = 6

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
    segments: list[str] = field(default_factory=list)  # one polyline per stretch without a gap
    gaps: int = 0


PAD_LEFT, PAD_RIGHT, PAD_TOP, PAD_BOTTOM = 48, 8, 8, 20


def time_ticks(t0: float, t1: float, tz: ZoneInfo = LONDON) -> list[tuple[float, str]]:
    """Round local times between t0 and t1 (epoch seconds), at most MAX_X_TICKS, with short labels:
    "14:00" within a day, "Wed 18" across days, "18 Nov" across weeks."""
    span = max(t1 - t0, 1.0)
    step = next((s for s in TICK_STEPS_S if span / s <= MAX_X_TICKS), TICK_STEPS_S[-1])
    start = datetime.fromtimestamp(t0, tz)
    cursor = start.replace(minute=0, second=0, microsecond=0)
    if step >= 86400:
        cursor = cursor.replace(hour=0)
    fmt = "%H:%M" if step < 86400 else "%a %d" if step < 7 * 86400 else "%d %b"
    ticks: list[tuple[float, str]] = []
    while cursor.timestamp() <= t1 and len(ticks) < 4 * MAX_X_TICKS:
        local = cursor.astimezone(tz)
        aligned = (local.hour * 3600 + local.minute * 60) % step == 0 if step < 86400 else (
            local.hour == 0 and (step < 7 * 86400 or local.weekday() == 0))
        if cursor.timestamp() >= t0 and aligned:
            ticks.append((cursor.timestamp(), local.strftime(fmt)))
        cursor = (cursor + timedelta(seconds=min(step, 3600))).astimezone(tz)  # hour by hour over DST
    return ticks


def line_chart(
    title: str,
    unit: str,
    samples: Sequence[tuple[datetime, float | None]],
    scale: float = 1.0,
    digits: int = 0,
    window: tuple[datetime, datetime] | None = None,
    gap_s: float | None = None,
) -> Chart:
    """Scale (time, value) samples into the chart box; None values (unknown) are skipped. With a
    `window` the x axis spans it (so a missing start or end shows); samples more than `gap_s` apart
    are not joined (the line breaks: no data there)."""
    chart = Chart(title=title, unit=unit)
    data = [(t, v * scale) for t, v in samples if v is not None]
    chart.count = len(data)
    if not data:
        return chart
    t0, t1 = data[0][0].timestamp(), data[-1][0].timestamp()
    if window is not None:
        t0, t1 = window[0].timestamp(), window[1].timestamp()
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
    segment: list[str] = []
    previous: float | None = None
    for t, v in data:
        ts = t.timestamp()
        if previous is not None and gap_s is not None and ts - previous > gap_s:
            chart.segments.append(" ".join(segment))
            chart.gaps += 1
            segment = []
        segment.append(f"{x(ts):.1f},{y(v):.1f}")
        previous = ts
    chart.segments.append(" ".join(segment))
    chart.y_ticks = [(y(v), f"{v:.{digits}f}") for v in (lo, (lo + hi) / 2, hi)]
    chart.x_ticks = [(x(ts), label) for ts, label in time_ticks(t0, t1)]
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
