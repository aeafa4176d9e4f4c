"""Heartbeat size and monthly data cost, measured on the wire; writes benchmarks/results/heartbeat.json.

Method (also in docs/status.md):
- Payload: the agent's own build_payload() over realistic component states and the Pi fixtures of
  tests/status (typical), and over every field at its realistic maximum (max). Baseline in the same
  run: the same document pretty-printed (indent=2), as a naive implementation would send it.
- Wire: the agent's HeartbeatClient posts to a local HTTPS server (TLS 1.3 as negotiated by this
  machine's OpenSSL, HTTP/1.1) presenting a production-shaped chain (RSA-2048 leaf + RSA-2048
  intermediate, like a Let's Encrypt RSA chain); a counting TCP proxy between them counts every byte
  of TLS records in each direction. Two cases: a new connection per heartbeat (full handshake: what
  happens when the server or a 4G NAT closes the idle connection between beats) and a kept-alive
  connection (only the request and response records).
- IP overhead, computed: each chunk the proxy relays is cut into 1448-byte TCP segments; every
  segment costs 52 bytes of IPv4 + TCP (with timestamps) headers and is answered by one pure ACK of
  52 bytes; a new connection adds 3 handshake and 4 teardown packets. Operators bill IP bytes.
- Month: 30.44 days; heartbeats every 60 s (the default) plus, as baselines, every 30 s (ExNVR) and
  every 10 s (Kerberos agent).
"""

from __future__ import annotations

import http.server
import json
import math
import socket
import ssl
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from report import write_results  # noqa: E402

from agent.clock import ManualClock  # noqa: E402
from agent.config import parse_config  # noqa: E402
from agent.status.heartbeat import HeartbeatClient, build_payload, encode  # noqa: E402
from agent.status.probes import Probes  # noqa: E402
from tests.status.conftest import FIXTURES, RecordedRunner  # noqa: E402
from tests.status.payloads import maximal_payload, store_with, typical_rows  # noqa: E402
from tests.status.tls import make_chain  # noqa: E402

MSS, HEADER, MONTH_S = 1448, 52, 30.44 * 86400
RESULTS = ROOT / "benchmarks" / "results" / "heartbeat.json"


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, like waitress behind a proxy

    def log_message(self, *args: object) -> None:
        pass

    def do_POST(self) -> None:  # noqa: N802
        self.rfile.read(int(self.headers.get("Content-Length", "0")))
        body = json.dumps({"ok": True, "server_time": "2026-11-28T13:04:26.500Z",
                           "instructions": []}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


class CountingProxy:
    """TCP relay that counts bytes and relayed chunks per direction."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.up = self.down = self.up_chunks = self.down_chunks = self.packets = self.connections = 0
        self._lock = threading.Lock()
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def reset(self) -> None:
        with self._lock:
            self.up = self.down = self.up_chunks = self.down_chunks = self.packets = self.connections = 0

    def _accept(self) -> None:
        while True:
            client, _ = self.sock.accept()
            server = socket.create_connection(self.target)
            with self._lock:
                self.connections += 1
            for a, b, up in ((client, server, True), (server, client, False)):
                threading.Thread(target=self._pipe, args=(a, b, up), daemon=True).start()

    def _pipe(self, src: socket.socket, dst: socket.socket, up: bool) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
                with self._lock:
                    segments = math.ceil(len(data) / MSS)
                    self.packets += 2 * segments  # data segments and their ACKs
                    if up:
                        self.up += len(data)
                        self.up_chunks += 1
                    else:
                        self.down += len(data)
                        self.down_chunks += 1
        except OSError:
            pass
        finally:
            for s in (src, dst):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass


def payloads() -> tuple[dict[str, bytes], float]:
    """Typical and pretty-printed bodies, and the median time to build one (ms)."""
    clock = ManualClock()
    cfg = parse_config({"unit": {"id": "herts-mcu-001", "data_dir": "/var/lib/cctv-agent"},
                        "status": {"config_version": "2026-11-20.1"}}, env={})
    store = store_with(clock, typical_rows(clock.time()))
    runner = RecordedRunner({
        ("chronyc", "-c", "tracking"): (FIXTURES / "chrony/tracking-synced.csv").read_text(),
        ("mmcli", "-J", "-L"): (FIXTURES / "mmcli/list.json").read_text(),
        ("mmcli", "-J", "-m", "0"): (FIXTURES / "mmcli/modem0.json").read_text(),
    })
    probes = Probes(root=FIXTURES / "pi4", run=runner, gpsd=None)
    probes.disk = lambda _d: {"total_bytes": 31_914_983_424, "free_bytes": 4_123_456_789}  # type: ignore
    probes.gps = lambda: {"fix": "3d", "lat": 51.705182, "lon": -0.278342,  # type: ignore
                          "time": "2026-11-28T13:04:26.000Z"}
    times = []
    for _ in range(200):
        t0 = time.perf_counter()
        doc = build_payload(cfg, store.read_all(), store.counters(), probes, clock, seq=123456,
                            reason="interval", acked=[])
        times.append(time.perf_counter() - t0)
    bodies = {"typical": encode(doc), "typical_pretty": json.dumps(doc, indent=2).encode()}
    return bodies, statistics.median(times) * 1000


def measure_wire(body: bytes, folder: Path, rounds: int = 20) -> tuple[dict[str, dict[str, float]], int]:
    """Bytes per heartbeat on a new and on a kept-alive connection, and the chain's DER size."""
    root, chain, key, der_bytes = make_chain(folder)
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(chain, key)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    server.socket = ctx.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    proxy = CountingProxy(server.server_address[:2])
    cfg = parse_config({"unit": {"id": "herts-mcu-001"}, "status": {
        "url": f"https://127.0.0.1:{proxy.port}", "token": "t" * 43, "ca_bundle": str(root)}}, env={})
    out: dict[str, dict[str, float]] = {}

    def settle() -> None:
        time.sleep(0.2)

    proxy.reset()
    for _ in range(rounds):  # a fresh connection (and full TLS handshake) per heartbeat
        client = HeartbeatClient(cfg.status, cfg.unit.id)
        client.post(body)
        client.close()
    settle()
    out["new_connection"] = per_beat(proxy, rounds, new_connections=True)

    client = HeartbeatClient(cfg.status, cfg.unit.id)
    client.post(body)
    settle()
    proxy.reset()
    for _ in range(rounds):
        client.post(body)
    settle()
    out["kept_alive"] = per_beat(proxy, rounds, new_connections=False)
    client.close()
    server.shutdown()
    return out, der_bytes


def per_beat(proxy: CountingProxy, rounds: int, new_connections: bool) -> dict[str, float]:
    packets = proxy.packets + (7 * proxy.connections if new_connections else 0)
    tls = (proxy.up + proxy.down) / rounds
    ip = tls + packets * HEADER / rounds
    return {"tls_up_bytes": proxy.up / rounds, "tls_down_bytes": proxy.down / rounds,
            "tls_bytes": tls, "packets": packets / rounds, "ip_bytes": round(ip),
            "connections": proxy.connections}


def monthly_mb(bytes_per_beat: float, interval_s: float) -> float:
    return round(bytes_per_beat * MONTH_S / interval_s / 1e6, 1)


def main() -> None:
    sizes, build_ms = payloads()
    with tempfile.TemporaryDirectory() as tmp:
        sizes["max"] = encode(maximal_payload(Path(tmp)))
    with tempfile.TemporaryDirectory() as tmp:
        wire, der_bytes = measure_wire(sizes["typical"], Path(tmp))
    result = {
        "machine": {"python": sys.version.split()[0], "openssl": ssl.OPENSSL_VERSION},
        "payload_bytes": {k: len(v) for k, v in sizes.items()},
        "build_payload_ms_median": round(build_ms, 3),
        "server_chain_der_bytes": der_bytes,
        "wire_per_heartbeat": wire,
        "monthly_mb": {
            f"{case}_every_{int(s)}s": monthly_mb(wire[case]["ip_bytes"], s)
            for case in ("kept_alive", "new_connection") for s in (60.0, 30.0, 10.0)
        },
        "monthly_mb_payload_only_every_60s": monthly_mb(len(sizes["typical"]), 60.0),
    }
    write_results(RESULTS, result, indent=2)


if __name__ == "__main__":
    main()
