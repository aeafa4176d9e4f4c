"""The street map (Leaflet, vendored in static/vendor/leaflet): where its tiles come from, what the
Content-Security-Policy must allow for them, and the points (units, sites) the pages hand to it.

The offline SVG map (charts.plot_map, _map.html) is drawn on the same pages and stays when tiles
cannot be reached; static/map.js decides which one shows.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any
from urllib.parse import urlsplit

from control_room.web import common


@dataclass(frozen=True)
class Point:
    """One marker: a unit (state online, attention, offline) or a site, with its page's link."""

    kind: str
    id: str
    label: str
    lat: float
    lon: float
    state: str
    href: str

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


def tile_source(url: str) -> str:
    """The CSP img-src entry for a tile URL template: its origin; a {s} subdomain becomes a wildcard."""
    if not url:
        return ""
    parts = urlsplit(url.replace("{s}", "tiles-subdomain"))
    host = parts.netloc.replace("tiles-subdomain", "*")
    return f"{parts.scheme}://{host}" if parts.scheme in ("http", "https") and host else ""


def tile_config() -> dict[str, Any]:
    """What the page's map needs to know about tiles (rendered as data- attributes)."""
    s = common.settings()
    return {"url": s.map_tile_url, "attribution": s.map_tile_attribution, "max_zoom": s.map_max_zoom}
