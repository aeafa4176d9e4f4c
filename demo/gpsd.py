"""A simulated GPS receiver for each demo unit: speaks gpsd's JSON protocol on 127.0.0.1.

The agent's GPS probe (agent/status/probes.py) connects, sends ?WATCH and reads the first TPV report,
exactly as with a real gpsd on a unit; this is the hardware edge, so it is the one thing simulated.
"""

from __future__ import annotations

import json
import socketserver
import threading
from datetime import UTC, datetime

VERSION = {"class": "VERSION", "release": "3.22", "rev": "3.22", "proto_major": 3, "proto_minor": 14}


class _Handler(socketserver.StreamRequestHandler):
    timeout = 5

    def handle(self) -> None:
        server: SimulatedGpsd = self.server.owner  # type: ignore[attr-defined]
        self.wfile.write(json.dumps(VERSION).encode() + b"\n")
        try:
            line = self.rfile.readline(4096)
        except OSError:
            return
        if not line.startswith(b"?WATCH"):
            return
        tpv = {"class": "TPV", "device": "/dev/ttyUSB1", "mode": 3, "status": 2,
               "time": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z"),
               "lat": server.lat, "lon": server.lon, "eph": 8.0}
        self.wfile.write(json.dumps({"class": "WATCH", "enable": True, "json": True}).encode() + b"\n")
        self.wfile.write(json.dumps(tpv).encode() + b"\n")


class _Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True


class SimulatedGpsd:
    """SimulatedGpsd(lat, lon).start() -> .address ("127.0.0.1:PORT" for the unit's status.gpsd)."""

    def __init__(self, lat: float, lon: float) -> None:
        self.lat, self.lon = lat, lon
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.owner = self  # type: ignore[attr-defined]
        self._thread = threading.Thread(target=self._server.serve_forever, name="gpsd", daemon=True)

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> SimulatedGpsd:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)
