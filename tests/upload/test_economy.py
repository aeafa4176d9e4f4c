"""4G economy: the monthly data budget holds clips (never snapshots), a request passes it, a new
period releases held clips; budget periods follow the reset day; upload sockets keep little unsent.
"""

from __future__ import annotations

import fcntl
import socket
import struct
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from agent.clock import ManualClock
from agent.db import connect, db_path
from agent.state import StateStore
from agent.upload.budget import CHUNK, period_start
from agent.upload.intake import object_prefix
from agent.upload.link import UNSENT_MAX, _WatchedHTTPConnection
from agent.upload.queue import JobState, UploadQueue
from agent.upload.worker import UploadService
from tests.upload.conftest import FAST, make_config, objects, publish, running, wait_until

SIOCOUTQNSD = 0x894B  # <linux/sockios.h>


@pytest.mark.parametrize(
    ("now", "day", "start"),
    [
        ("2026-11-20T10:00:00", 1, "2026-11-01"),
        ("2026-11-20T10:00:00", 25, "2026-10-25"),
        ("2026-01-03T00:00:00", 5, "2025-12-05"),
        ("2026-03-05T00:00:00", 5, "2026-03-05"),
    ],
)
def test_budget_period_starts_on_the_reset_day(now: str, day: int, start: str) -> None:
    got = period_start(datetime.fromisoformat(now).replace(tzinfo=UTC), day)
    assert got == datetime.fromisoformat(start).replace(tzinfo=UTC)


def state_of(data: Path, event_id: str, role: str) -> str | None:
    row = (
        UploadQueue.open(connect(db_path(data)))
        .conn.execute("SELECT state FROM upload_jobs WHERE event_id = ? AND role = ?", (event_id, role))
        .fetchone()
    )
    return row[0] if row else None


def test_past_the_budget_clips_wait_snapshots_go_and_a_request_or_new_period_releases_them(
    tmp_path: Path, moto_url: str, bucket: str, s3_admin: Any
) -> None:
    data = tmp_path / "data"
    clock = ManualClock(wall=datetime(2026, 11, 20, 12, tzinfo=UTC).timestamp())
    cfg = make_config(data, moto_url, bucket, monthly_budget_mb=0.3, budget_reset_day=1)
    t0 = clock.time() - 3600
    first = publish(data, t0, b"a" * 200_000)
    svc = UploadService(cfg, clock, FAST)
    with running(svc):
        wait_until(lambda: state_of(data, first.event_id, "clip") == "done", 60, "first clip within budget")
        second = publish(data, t0 + 60, b"b" * 200_000)
        third = publish(data, t0 + 120, b"c" * 200_000)
        for rec in (second, third):
            wait_until(
                lambda r=rec: state_of(data, r.event_id, "clip") == JobState.HELD.value, 60, "held clip"
            )
            keys = set(objects(s3_admin, bucket))
            assert object_prefix(cfg, rec) + "snapshot.jpg" in keys  # snapshots always go
            assert object_prefix(cfg, rec) + "clip.mp4" not in keys
        state = StateStore(connect(db_path(data)), clock)
        wait_until(lambda: state.read("upload").state["held_by_budget"] == 2, 60, "held clips in status")
        up = state.read("upload").state
        assert up["budget_bytes"] == 300_000 and up["used_bytes"] > 240_000
        assert up["period_start"] == "2026-11-01T00:00:00.000Z"

        assert svc.request_event(second.event_id)  # a control-room request passes the budget
        wait_until(lambda: state_of(data, second.event_id, "clip") == "done", 60, "requested clip")
        assert state_of(data, third.event_id, "clip") == JobState.HELD.value

        clock.set_wall(datetime(2026, 12, 1, 0, 5, tzinfo=UTC).timestamp())  # a new period
        wait_until(lambda: state_of(data, third.event_id, "clip") == "done", 60, "clip in the new period")
        wait_until(
            lambda: state.read("upload").state["period_start"] == "2026-12-01T00:00:00.000Z", 10, "period"
        )
    body = s3_admin.get_object(Bucket=bucket, Key=object_prefix(cfg, third) + "clip.mp4")["Body"].read()
    assert body == b"c" * 200_000


def unsent(sock: socket.socket) -> int:
    """Bytes queued in a TCP socket and not yet sent (SIOCOUTQNSD)."""
    return int(struct.unpack("i", fcntl.ioctl(sock.fileno(), SIOCOUTQNSD, b"\0\0\0\0"))[0])


@pytest.mark.skipif(not hasattr(socket, "TCP_NOTSENT_LOWAT"), reason="no TCP_NOTSENT_LOWAT on this system")
def test_an_upload_socket_holds_little_unsent_so_a_kill_discards_little_that_was_counted() -> None:
    """The meter counts bytes handed to the socket; a kill -9 that resets the connection discards what
    the kernel still held unsent. Upload connections keep that under UNSENT_MAX + one 16 KiB chunk
    (a blocking send waits instead), whatever the send buffer the kernel grows for the data in flight."""
    with socket.create_server(("127.0.0.1", 0)) as server:
        port = server.getsockname()[1]
        conn = _WatchedHTTPConnection("127.0.0.1", port)
        conn.connect()  # what botocore's pool does for every new upload connection
        peer, _ = server.accept()  # never reads: the link is stuck
        sock = conn.sock
        try:
            assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NOTSENT_LOWAT) == UNSENT_MAX
            sock.settimeout(0.5)
            handed = 0
            with pytest.raises(TimeoutError):
                while handed < 64 * 1024 * 1024:
                    sock.sendall(b"x" * CHUNK)
                    handed += CHUNK
            assert unsent(sock) <= UNSENT_MAX + CHUNK, f"{unsent(sock)} bytes unsent after {handed} handed"
        finally:
            conn.close()
            peer.close()
