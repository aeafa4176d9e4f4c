"""sd_notify over a real AF_UNIX datagram socket (path and abstract '@' names), and the watchdog
feeder that pings only while the camera, recording and upload stages report fresh good states."""

from __future__ import annotations

import os
import socket
import sqlite3
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from agent.clock import ManualClock
from agent.state import StateStore
from agent.status.liveness import Liveness, WatchdogFeeder
from agent.status.sdnotify import Notifier, watchdog_interval_s
from tests.status.conftest import make_config


class NotifySocket:
    """What systemd does: binds the datagram socket and reads the messages the agent sends
    (a reader thread, so the agent's non-blocking sends never find the queue full)."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(b"\0" + name[1:].encode() if name.startswith("@") else name)
        self.sock.settimeout(0.05)
        self.messages: list[tuple[float, str]] = []  # (time.monotonic() on arrival, text)
        self._taken = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        while not self._stop.is_set():
            try:
                self.messages.append((time.monotonic(), self.sock.recv(4096).decode()))
            except TimeoutError:
                continue
            except OSError:
                return

    def drain(self, settle: float = 0.1) -> list[str]:
        """Messages that arrived since the last drain (waiting `settle` for those in flight)."""
        time.sleep(settle)
        got = [m for _, m in self.messages[self._taken:]]
        self._taken += len(got)
        return got

    def close(self) -> None:
        self._stop.set()
        self._thread.join(2)
        self.sock.close()


@pytest.fixture(params=["path", "abstract"])
def notify_socket(request, tmp_path: Path) -> Iterator[NotifySocket]:
    name = str(tmp_path / "notify.sock") if request.param == "path" else f"@cctv-test-{uuid.uuid4().hex}"
    s = NotifySocket(name)
    yield s
    s.close()


def test_messages_reach_the_socket(notify_socket: NotifySocket) -> None:
    n = Notifier({"NOTIFY_SOCKET": notify_socket.name, "WATCHDOG_USEC": "30000000"})
    assert n.enabled and n.watchdog_s == 15.0
    assert n.ready("recording") and n.watchdog() and n.status("x" * 500) and n.stopping()
    got = notify_socket.drain()
    assert got[0] == "READY=1\nSTATUS=recording"
    assert got[1] == "WATCHDOG=1"
    assert got[2] == "STATUS=" + "x" * 200
    assert got[3] == "STOPPING=1"
    n.close()


def test_without_systemd_everything_is_a_noop(tmp_path: Path) -> None:
    n = Notifier({})
    assert not n.enabled and n.watchdog_s is None
    assert n.ready() is False and n.watchdog() is False
    # a socket that went away (systemd restarting) is not an error either
    gone = Notifier({"NOTIFY_SOCKET": str(tmp_path / "gone.sock")})
    assert gone.watchdog() is False


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({"WATCHDOG_USEC": "20000000"}, 10.0),
        ({"WATCHDOG_USEC": "20000000", "WATCHDOG_PID": str(os.getpid())}, 10.0),
        ({"WATCHDOG_USEC": "20000000", "WATCHDOG_PID": "1"}, None),  # meant for another process
        ({"WATCHDOG_USEC": "0"}, None),
        ({"WATCHDOG_USEC": "soon"}, None),
        ({}, None),
    ],
)
def test_watchdog_interval_is_half_of_watchdog_usec(env: dict[str, str], expected: float | None) -> None:
    assert watchdog_interval_s(env) == expected


class Stages:
    """Component-state rows as the camera supervisor, segment recorder and upload worker write them."""

    def __init__(self, clock: ManualClock) -> None:
        self.store = StateStore(sqlite3.connect(":memory:", isolation_level=None), clock)
        self.clock = clock

    def working(self) -> None:
        self.store.report("camera", state="ok", fps=10.0, last_frame_at=self.clock.time(), restarts=0)
        self.store.report("recording", state="recording", last_segment_at=self.clock.time(),
                          segment_seconds=10)
        self.store.report("upload", alive_at=self.clock.time(), pending=0)


def feed_for(feeder: WatchdogFeeder, stages: Stages, seconds: int, camera: str | None = "ok") -> int:
    """Advance the unit one second at a time; stages report as told; return pings sent meanwhile."""
    before = feeder.pings
    for _ in range(seconds):
        stages.clock.advance(1)
        stages.store.report("recording", state="recording", last_segment_at=stages.clock.time(),
                            segment_seconds=10)
        stages.store.report("upload", alive_at=stages.clock.time(), pending=0)
        if camera is not None:
            stages.store.report("camera", state=camera, fps=10.0 if camera == "ok" else 0.0, restarts=0)
        feeder.tick(stages.store.read_all(), stages.clock.monotonic())
        time.sleep(0.001)  # let the reader thread (systemd's part) keep up
    return feeder.pings - before


def make_feeder(tmp_path: Path, clock: ManualClock, sock: NotifySocket, **sections: dict) -> WatchdogFeeder:
    cfg = make_config(tmp_path, **sections)
    notifier = Notifier({"NOTIFY_SOCKET": sock.name, "WATCHDOG_USEC": "10000000"})  # feed every 5 s
    return WatchdogFeeder(notifier, Liveness(cfg, clock.monotonic()))


@pytest.mark.parametrize("stall", ["camera_silent", "camera_stalled", "recording_stopped", "upload_dead"])
def test_feeder_stops_when_a_stage_stalls(
    tmp_path: Path, notify_socket: NotifySocket, stall: str
) -> None:
    clock = ManualClock()
    stages = Stages(clock)
    feeder = make_feeder(tmp_path, clock, notify_socket)
    stages.working()
    assert feed_for(feeder, stages, 60) == 12  # every 5 s while everything works
    assert notify_socket.drain().count("WATCHDOG=1") == 12

    if stall == "camera_silent":  # the camera thread hangs: no more reports at all
        pings = feed_for(feeder, stages, 60, camera=None)
    elif stall == "camera_stalled":  # the supervisor says it is stalled / reopening
        pings = feed_for(feeder, stages, 60, camera="stalled")
    elif stall == "recording_stopped":
        stages.store.report("recording", state="recording", last_segment_at=clock.time(), segment_seconds=10)
        before = feeder.pings
        for _ in range(60):
            clock.advance(1)
            stages.store.report("camera", state="ok", fps=10.0, restarts=0)
            stages.store.report("upload", alive_at=clock.time(), pending=0)
            feeder.tick(stages.store.read_all(), clock.monotonic())
            time.sleep(0.001)
        pings = feeder.pings - before
    else:
        before = feeder.pings
        for _ in range(200):
            clock.advance(1)
            stages.store.report("camera", state="ok", fps=10.0, restarts=0)
            stages.store.report("recording", state="recording", last_segment_at=clock.time(),
                                segment_seconds=10)
            feeder.tick(stages.store.read_all(), clock.monotonic())
            time.sleep(0.001)
        pings = feeder.pings - before
    # pings only while the stage is within its limit (camera 25 s, recording 30 s, upload 120 s),
    # then none: systemd's watchdog fires
    msgs = notify_socket.drain()
    limit = {"camera_silent": 25, "camera_stalled": 25, "recording_stopped": 30, "upload_dead": 120}[stall]
    assert pings <= limit // 5 + 1, pings
    assert any(m.startswith("STATUS=unhealthy") for m in msgs)
    assert msgs[-1] != "WATCHDOG=1"
    last_ping = feeder.pings
    feed_for(feeder, stages, 30, camera=None) if stall.startswith("camera") else None
    assert feeder.pings == last_ping


def test_uploads_disabled_are_not_required(tmp_path: Path, notify_socket: NotifySocket) -> None:
    clock = ManualClock()
    stages = Stages(clock)
    feeder = make_feeder(tmp_path, clock, notify_socket, upload={"enabled": False})
    stages.working()
    before = feeder.pings
    for _ in range(200):
        clock.advance(1)
        stages.store.report("camera", state="ok", fps=10.0, restarts=0)
        stages.store.report("recording", state="recording", last_segment_at=clock.time(), segment_seconds=10)
        feeder.tick(stages.store.read_all(), clock.monotonic())
        time.sleep(0.001)
    assert feeder.pings - before == 40


def test_start_up_grace_then_missing_stages_starve_the_watchdog(
    tmp_path: Path, notify_socket: NotifySocket
) -> None:
    clock = ManualClock()
    stages = Stages(clock)
    feeder = make_feeder(tmp_path, clock, notify_socket)
    assert feed_for(feeder, stages, 25, camera=None) > 0  # starting: nothing reported yet, fed
    stages.store.report("camera", state="ok")
    verdict = None
    for _ in range(30):
        clock.advance(1)
        verdict = feeder.tick(stages.store.read_all(), clock.monotonic())
    assert verdict is not None and not verdict.healthy and "camera" in verdict.reason


def test_clock_jumps_do_not_fool_freshness(tmp_path: Path, notify_socket: NotifySocket) -> None:
    """Freshness is judged on monotonic time: an NTP step of the wall clock changes nothing."""
    clock = ManualClock()
    stages = Stages(clock)
    feeder = make_feeder(tmp_path, clock, notify_socket)
    stages.working()
    feed_for(feeder, stages, 10)
    clock.set_wall(clock.time() + 86400 * 365)  # a Pi without RTC learning the real date
    assert feed_for(feeder, stages, 30) == 6
    clock.set_wall(clock.time() - 86400 * 400)
    assert feed_for(feeder, stages, 30) == 6
