"""Whether a unit's GPS fix can be believed: not 0,0, inside the configured area, and not further from
the last believed fix than a vehicle could have driven. An implausible fix is kept and flagged by
control_room.ingest, and left off the map (control_room.fleet.map_position).
"""

from __future__ import annotations

import math
from datetime import datetime

Box = tuple[float, float, float, float]  # south, west, north, east (degrees)
NULL_ISLAND_DEG = 1e-4  # about 11 m: a receiver with no fix that reports zeros
MIN_INTERVAL_S = 1.0  # fixes closer in time than this are judged as 1 s apart


def distance_m(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle distance (haversine) in metres."""
    r = 6_371_000.0
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * r * math.asin(math.sqrt(a))


def implausible(lat: float, lon: float, at: datetime, previous: tuple[float, float, datetime | None] | None,
                box: Box | None, max_speed_kmh: float) -> str | None:
    """Why the fix (lat, lon) at `at` cannot be believed, or None if it can."""
    if abs(lat) < NULL_ISLAND_DEG and abs(lon) < NULL_ISLAND_DEG:
        return "GPS reported 0,0 (no real fix)"
    if box is not None:
        south, west, north, east = box
        if not (south <= lat <= north and west <= lon <= east):
            return f"GPS {lat:.5f},{lon:.5f} is outside the configured area"
    if previous is not None and previous[2] is not None:
        plat, plon, pat = previous
        seconds = max(MIN_INTERVAL_S, abs((at - pat).total_seconds()))
        metres = distance_m(plat, plon, lat, lon)
        kmh = metres / seconds * 3.6
        if kmh > max_speed_kmh:
            return (f"GPS jumped {metres / 1000:.1f} km in {seconds:.0f} s ({kmh:.0f} km/h, faster than "
                    f"a vehicle)")
    return None
