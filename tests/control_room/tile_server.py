"""A local map tile server for the browser tests: answers /tiles/{z}/{x}/{y}.png with a small PNG and
counts what it served, so a test can see the street map use it (and stop it to see the fallback).
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import cv2
import numpy as np

TILE_RE = re.compile(r"^/tiles/(\d+)/(\d+)/(\d+)\.png$")


def tile_png() -> bytes:
    """A 256 px tile: pale green with a grey grid, so a screenshot shows where tiles were drawn."""
    image = np.full((256, 256, 3), (225, 238, 225), np.uint8)
    image[::64, :] = image[:, ::64] = (160, 160, 160)
    ok, png = cv2.imencode(".png", image)
    assert ok
    return png.tobytes()


@dataclass
class TileServer:
    url: str  # the tile URL template for settings.map_tile_url
    served: list[str] = field(default_factory=list)


@contextmanager
def tile_server() -> Iterator[TileServer]:
    body = tile_png()
    info = TileServer(url="")

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (http.server's name)
            if not TILE_RE.match(self.path):
                self.send_error(404)
                return
            info.served.append(self.path)
            self.send_response(200)
            self.send_header("Content-Type", "image/png")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    info.url = f"http://127.0.0.1:{server.server_address[1]}/tiles/{{z}}/{{x}}/{{y}}.png"
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield info
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)
