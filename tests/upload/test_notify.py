"""Event notifications to the control room (docs/protocol.md): durably queued, retried, in order."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from tests.upload.conftest import make_config, wait_until


class Recorder(BaseHTTPRequestHandler):
    """The control room's event endpoint as the protocol defines it; the first answer is a 503."""

    calls: list[tuple[str, dict[str, str], dict[str, Any]]] = []
    failures = 1

    def do_POST(self) -> None:  # noqa: N802 - http.server API
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        if Recorder.failures > 0:
            Recorder.failures -= 1
            self.send_response(503)
            self.end_headers()
            return
        Recorder.calls.append((self.path, dict(self.headers), body))
        out = b'{"ok": true}'
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(out)))
        self.end_headers()
        self.wfile.write(out)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def control_room() -> Iterator[str]:
    Recorder.calls, Recorder.failures = [], 1
    server = ThreadingHTTPServer(("127.0.0.1", 0), Recorder)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def test_each_event_is_notified_after_its_snapshot_and_again_after_its_verified_clip(
    tmp_path: Path, moto_url: str, bucket: str, control_room: str, service: Any, publish_events: Any
) -> None:
    data = tmp_path / "data"
    status = {"url": control_room, "token": "t0ken-for-unit"}
    records = publish_events(2)
    service(make_config(data, moto_url, bucket, status=status))
    wait_until(lambda: len(Recorder.calls) == 4, 20, "four notifications")
    for rec in records:
        calls = [(p, h, b) for p, h, b in Recorder.calls if b["event_id"] == rec.event_id]
        assert [b["state"] for _, _, b in calls] == ["snapshot_uploaded", "clip_uploaded"]
        (path, headers, first), (_, _, second) = calls
        assert path == "/api/v1/units/herts-mcu-001/events"
        assert headers["Authorization"] == "Bearer t0ken-for-unit"
        assert set(first["objects"]) == {"manifest", "snapshot"}  # the clip only once it is verified
        assert set(second["objects"]) == {"manifest", "snapshot", "clip"}
        assert second["objects"]["clip"]["sha256"] == rec.file("clip").sha256
        assert first["bucket"] == bucket and first["site"] == "High St north" and first["schema"] == 1
        assert len(json.dumps(second)) < 16 * 1024


def test_without_a_control_room_url_no_notification_is_queued(
    tmp_path: Path, moto_url: str, bucket: str, service: Any, publish_events: Any
) -> None:
    from agent.db import connect, db_path
    from agent.upload.queue import UploadQueue
    from agent.upload.stats import queue_stats

    data = tmp_path / "data"
    publish_events(1)
    service(make_config(data, moto_url, bucket))
    q = UploadQueue.open(connect(db_path(data)))
    wait_until(
        lambda: (
            queue_stats(q.conn).last_success_at
            and queue_stats(q.conn).pending == 0
            and queue_stats(q.conn).active == 0
        ),
        15,
        "done",
    )
    assert q.conn.execute("SELECT COUNT(*) FROM upload_jobs WHERE kind = 'notify'").fetchone()[0] == 0


class Redirecting(BaseHTTPRequestHandler):
    """A control room behind a proxy that sends the POST to a login page (302 -> GET 200 HTML)."""

    def do_POST(self) -> None:  # noqa: N802 - http.server API
        self.rfile.read(int(self.headers["Content-Length"]))
        self.send_response(302)
        self.send_header("Location", "/login")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def do_GET(self) -> None:  # noqa: N802 - http.server API
        out = b"<html>sign in</html>"
        self.send_response(200)
        self.send_header("Content-Length", str(len(out)))
        self.end_headers()
        self.wfile.write(out)

    def log_message(self, *args: Any) -> None:
        pass


def test_a_redirected_notification_is_not_taken_for_delivered(tmp_path: Path) -> None:
    from agent.errors import PermanentError
    from agent.http import HttpClient
    from agent.upload.notify import send_event

    server = ThreadingHTTPServer(("127.0.0.1", 0), Redirecting)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}"
        cfg = make_config(tmp_path, "http://127.0.0.1:1", "b", status={"url": url, "token": "t0ken"})
        with pytest.raises(PermanentError, match="302"):
            send_event(HttpClient(), cfg, {"event_id": "herts-mcu-001-20260101T000000.000Z"})
    finally:
        server.shutdown()
