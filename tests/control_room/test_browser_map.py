"""The street map in a real headless Chromium: Leaflet (vendored) draws units coloured by state and
their sites on tiles from a local test tile server, clusters a crowd of units, updates a marker live,
and leaves the offline SVG map in place when the tile server cannot be reached.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import select

from control_room.config import Settings
from control_room.db import session_scope
from control_room.models import Unit
from tests.control_room.test_browser import (
    ARTIFACTS,
    WAIT_MS,
    beat,
    browser_type_launch_args,  # noqa: F401 (a fixture)
    deploy_at_site,
    log_in,
)
from tests.control_room.tile_server import TileServer, tile_server
from tests.control_room.web_fixtures import chromium_path, s3_settings

if chromium_path() is None:
    pytest.skip("chromium is not installed (run `make system-deps` as root)", allow_module_level=True)

pytestmark = pytest.mark.slow
CROWD = 24


@pytest.fixture
def database_url(sqlite_url: str) -> str:
    return sqlite_url


@pytest.fixture
def tiles() -> TileServer:
    with tile_server() as server:
        yield server


@pytest.fixture
def settings(tmp_path: Path, database_url: str, s3_endpoint: str, tiles: TileServer) -> Settings:
    return s3_settings(tmp_path, database_url, s3_endpoint, web_poll_s=0.5, map_tile_url=tiles.url,
                       map_tile_attribution="Test tiles <local>")


def place(engine, unit_id: str, lat: float, lon: float) -> None:  # noqa: ANN001
    with session_scope(engine) as s:
        unit = s.scalar(select(Unit).where(Unit.unit_id == unit_id))
        unit.lat, unit.lon = lat, lon


def test_units_on_local_tiles_coloured_by_state_clustered_and_live(  # noqa: ANN001
    page, live_server, factory, engine, clock, tiles
) -> None:
    base = live_server.url
    errors: list[str] = []
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    well = factory.unit("herts-mcu-001", "herts")
    stalled = factory.unit("herts-mcu-002", "herts")
    silent = factory.unit("herts-mcu-003", "herts")
    factory.user("alice", "operator", "herts")
    beat(base, well)
    beat(base, stalled, camera={"state": "stalled", "fps": 0, "restarts": 3},
         gps={"fix": "3d", "lat": 51.7200, "lon": -0.2600})
    place(engine, silent.unit_id, 51.7100, -0.2700)  # a position from long ago, no heartbeat since
    deploy_at_site(engine, well.unit_id, clock)
    log_in(page, base, "alice")
    page.wait_for_selector("#fleet-map.tiles-ok", timeout=WAIT_MS)
    assert page.locator("#fleet-map .leaflet-tile-loaded").count() >= 1 and tiles.served
    assert page.locator("#fleet-map .svgmap").is_hidden()
    assert page.locator("path.unit-marker.unit-online").count() == 1
    assert page.locator("path.unit-marker.unit-attention").count() == 1  # the stalled camera
    assert page.locator("path.unit-marker.unit-offline").count() == 1
    assert page.locator(".site-marker").count() == 1
    assert page.locator(".leaflet-control-attribution").inner_text().endswith("Test tiles <local>")
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "map-tiles.png"), full_page=True)

    # the silent unit comes back: its marker turns, without a reload
    page.evaluate("window.__noReload = true")
    beat(base, silent, gps={"fix": "3d", "lat": 51.7100, "lon": -0.2700})
    page.wait_for_function("() => document.querySelectorAll('path.unit-marker.unit-online').length == 2",
                           timeout=WAIT_MS)
    assert page.locator("path.unit-marker.unit-offline").count() == 0
    assert page.evaluate("window.__noReload") is True

    # a partnership-scale crowd: zoomed out, nearby units become one counted cluster
    for i in range(CROWD):
        unit = factory.unit(f"herts-mcu-{100 + i}", "herts")
        beat(base, unit, gps={"fix": "3d", "lat": 51.70 + (i % 6) * 0.004, "lon": -0.28 + (i // 6) * 0.004})
    page.reload()
    page.wait_for_selector("#fleet-map.tiles-ok", timeout=WAIT_MS)
    page.evaluate("window.__cctvMaps[0].map.setZoom(9)")
    cluster = page.locator(".cluster-marker")
    cluster.first.wait_for(timeout=WAIT_MS)
    assert sum(int(t) for t in cluster.all_inner_texts()) == CROWD + 3
    page.screenshot(path=str(ARTIFACTS / "map-clusters.png"), full_page=True)
    cluster.first.click()  # zooms in to the cluster's units
    page.wait_for_function("() => window.__cctvMaps[0].map.getZoom() > 9", timeout=WAIT_MS)
    assert errors == []


def test_offline_svg_map_when_the_tile_server_is_down(  # noqa: ANN001
    page, live_server, factory, engine, clock, tiles
) -> None:
    base = live_server.url
    unit = factory.unit("herts-mcu-001", "herts")
    factory.user("alice", "operator", "herts")
    beat(base, unit)
    deploy_at_site(engine, unit.unit_id, clock)
    # stop the tile server: its port now refuses connections
    with tile_server() as down:
        down_url = down.url
    live_server.app.config["SETTINGS"] = live_server.app.config["SETTINGS"].model_copy(
        update={"map_tile_url": down_url})
    log_in(page, base, "alice")
    page.wait_for_selector("#fleet-map.tiles-failed", timeout=WAIT_MS)
    assert page.locator("#fleet-map svg#map").is_visible()
    assert page.locator("#fleet-map .tilemap").is_hidden()
    assert page.locator("#fleet-map svg#map circle.unit.online").count() == 1
    page.screenshot(path=str(ARTIFACTS / "map-fallback.png"), full_page=True)
