"""Fixtures for the status area: recorded command output, a fake gpsd speaking its real protocol,
a throwaway control room (real HTTP on 127.0.0.1) and unit configs pointing at it.
"""

from __future__ import annotations

import hashlib
import http.server
import json
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import pytest

from agent.clock import ManualClock
from agent.config import Config, parse_config
from tests.waiting import holds_within

FIXTURES = Path(__file__).resolve().parent / "fixtures"


class RecordedRunner:
    """Stands in for subprocess at the hardware edge: argv -> recorded stdout (None = command absent)."""

    def __init__(self, outputs: dict[tuple[str, ...], str | None]) -> None:
        self.outputs = outputs
        self.calls: list[tuple[tuple[str, ...], float]] = []

    def __call__(self, argv: Sequence[str], timeout_s: float) -> str | None:
        self.calls.append((tuple(argv), timeout_s))
        return self.outputs.get(tuple(argv))


def fixture_text(rel: str) -> str:
    return (FIXTURES / rel).read_text()


@pytest.fixture
def pi_runner() -> RecordedRunner:
    """A Pi with chrony synced and a connected 4G modem."""
    return RecordedRunner(
        {
            ("chronyc", "-c", "tracking"): fixture_text("chrony/tracking-synced.csv"),
            ("mmcli", "-J", "-L"): fixture_text("mmcli/list.json"),
            ("mmcli", "-J", "-m", "0"): fixture_text("mmcli/modem0.json"),
        }
    )


class FakeGpsd:
    """A TCP server on 127.0.0.1 that replays recorded gpsd JSON: VERSION on connect, the rest
    after the client's ?WATCH command, like gpsd; `hold` keeps the connection open afterwards."""

    def __init__(self, lines: list[str], hold: float = 5.0) -> None:
        self.lines = lines
        self.hold = hold
        self.commands: list[str] = []
        self._sock = socket.create_server(("127.0.0.1", 0))
        self._sock.settimeout(0.2)
        self.addr: tuple[str, int] = self._sock.getsockname()[:2]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except TimeoutError:
                continue
            with conn:
                conn.settimeout(2.0)
                conn.sendall((self.lines[0] + "\n").encode())
                try:
                    self.commands.append(conn.recv(4096).decode())
                except OSError:
                    continue
                for line in self.lines[1:]:
                    conn.sendall((line + "\n").encode())
                self._stop.wait(self.hold)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self._sock.close()


@pytest.fixture
def fake_gpsd() -> Iterator[Callable[[str], FakeGpsd]]:
    servers: list[FakeGpsd] = []

    def start(name: str, hold: float = 5.0) -> FakeGpsd:
        lines = [ln for ln in fixture_text(f"gpsd/{name}").splitlines() if ln.strip()]
        for ln in lines:
            json.loads(ln)  # the recording itself must be valid gpsd JSON
        server = FakeGpsd(lines, hold)
        servers.append(server)
        return server

    yield start
    for s in servers:
        s.close()


# -- a throwaway control room --------------------------------------------------------------------

UNIT_ID = "herts-mcu-001"
TOKEN = "unit-token-7f3a9c2e5b1d4086a1e2c3d4f5a6b7c8"


class ControlRoom:
    """The heartbeat endpoint of docs/protocol.md over real HTTP on 127.0.0.1, with fault modes:
    `ok`, `500`, `hang` (holds each request until `release` is set), `revoked`, `unauthorized`."""

    def __init__(self, token: str = TOKEN, tls: ssl.SSLContext | None = None) -> None:
        self.token_hash = hashlib.sha256(token.encode()).hexdigest()
        self.tls = tls
        self.mode = "ok"
        self.received: list[dict] = []
        self.headers: list[dict[str, str]] = []
        self.requests = 0
        self.instructions: list[list] = []  # one list per future response
        self.release = threading.Event()
        self.port = 0
        self._server: http.server.ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"{'https' if self.tls else 'http'}://127.0.0.1:{self.port}"

    def start(self) -> ControlRoom:
        room = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_POST(self) -> None:  # noqa: N802
                room.requests += 1
                length = int(self.headers.get("Content-Length", "0"))
                body = self.rfile.read(length)
                if room.mode == "hang":
                    room.release.wait(30)
                    return  # drop the connection without an answer
                if room.mode == "500":
                    return self._send(500, {"error": "database unavailable"})
                auth = self.headers.get("Authorization", "")
                given = hashlib.sha256(auth.removeprefix("Bearer ").encode()).hexdigest()
                if room.mode == "revoked":
                    return self._send(401, {"error": "revoked"})
                if room.mode == "unauthorized" or given != room.token_hash:
                    return self._send(401, {"error": "unauthorized"})
                if self.path != f"/api/v1/units/{UNIT_ID}/heartbeat":
                    return self._send(403, {"error": "wrong unit"})
                if length > 16384:
                    return self._send(413, {"error": "too large"})
                try:
                    doc = json.loads(body)
                except ValueError:
                    return self._send(400, {"error": "malformed JSON"})
                if not isinstance(doc, dict) or doc.get("schema") != 1:
                    return self._send(400, {"error": "schema missing"})
                room.headers.append(dict(self.headers.items()))
                room.received.append(doc)
                instructions = room.instructions.pop(0) if room.instructions else []
                stamp = time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime())
                self._send(200, {"ok": True, "server_time": stamp, "instructions": instructions})

            def _send(self, code: int, doc: dict) -> None:
                data = json.dumps(doc).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        http.server.ThreadingHTTPServer.allow_reuse_address = True
        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._server.daemon_threads = True
        if self.tls is not None:
            self._server.socket = self.tls.wrap_socket(self._server.socket, server_side=True)
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Take the control room off the network: connections are refused until start()."""
        self.release.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=5)

    def wait_for(self, predicate: Callable[[], bool], timeout: float = 10.0,
                 clock: ManualClock | None = None, step: float = 0.0) -> bool:
        """Bounded real wait (a real socket is involved); optionally moving a ManualClock meanwhile."""
        return holds_within(predicate, timeout, clock=clock, step=step, interval=0.02)


@pytest.fixture
def control_room() -> Iterator[ControlRoom]:
    room = ControlRoom().start()
    yield room
    room.stop()


def make_config(tmp_path: Path, url: str = "", **sections: dict) -> Config:
    data: dict = {
        "unit": {"id": UNIT_ID, "data_dir": str(tmp_path / "data")},
        "status": {"url": url, "token": TOKEN, "timeout_s": 2.0, "gpsd": "", "modem": False},
    }
    for name, values in sections.items():
        data.setdefault(name, {}).update(values)
    return parse_config(data, env={})


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()
