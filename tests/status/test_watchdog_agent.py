"""The real agent (`cctv-agent run`) under a fake systemd notify socket: READY=1, then WATCHDOG=1
while frames flow; when the camera stalls (a stream that stops delivering, like a hung camera
stack) the agent stops feeding the watchdog, so systemd would restart it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import numpy as np
import pytest

from tests.status.test_sdnotify import NotifySocket
from tests.waiting import holds_within

REPO = Path(__file__).resolve().parents[2]
W, H, FPS = 320, 240, 10


class StallingCamera:
    """A camera stream at the hardware edge: YUV4MPEG2 frames into a FIFO at the real frame rate
    until `stall()`, then the stream stays open but silent (what a locked-up camera stack does)."""

    def __init__(self, fifo: Path) -> None:
        os.mkfifo(fifo)
        self.fifo = fifo
        self.frames = 0
        self._stalled = threading.Event()
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            fd = os.open(self.fifo, os.O_WRONLY)  # blocks until the agent opens the camera
        except OSError:
            return
        try:
            with os.fdopen(fd, "wb") as out:
                out.write(f"YUV4MPEG2 W{W} H{H} F{FPS}:1 Ip A1:1 C420jpeg\n".encode())
                chroma = np.full(W * H // 2, 128, np.uint8).tobytes()
                x = np.arange(W, dtype=np.uint16)
                while not self._stalled.is_set() and not self._done.is_set():
                    luma = ((x[None, :] + self.frames * 4) % 256).astype(np.uint8).repeat(H, 0)
                    out.write(b"FRAME\n" + luma.tobytes() + chroma)
                    out.flush()
                    self.frames += 1
                    time.sleep(1 / FPS)
                self._done.wait(60)
        except (BrokenPipeError, OSError):
            pass

    def stall(self) -> None:
        self._stalled.set()

    def close(self) -> None:
        self._done.set()
        try:  # unblock a writer still waiting for a reader
            os.close(os.open(self.fifo, os.O_RDONLY | os.O_NONBLOCK))
        except OSError:
            pass
        self._thread.join(5)


@pytest.mark.slow
def test_watchdog_stops_being_fed_when_the_camera_stalls(tmp_path: Path) -> None:
    camera = StallingCamera(tmp_path / "camera.y4m")
    sock = NotifySocket(f"@cctv-agent-test-{uuid.uuid4().hex}")
    config = tmp_path / "agent.toml"
    config.write_text(f"""
[unit]
id = "herts-mcu-001"
data_dir = "{tmp_path / 'data'}"

[camera]
source = "opencv"
device = "{camera.fifo}"
width = {W}
height = {H}
fps = {FPS}
analysis_width = 160
analysis_height = 120
stall_timeout_s = 2

[recording]
segment_seconds = 2
bitrate_kbps = 300

[upload]
enabled = false

[status]
enabled = false   # no control room: the watchdog and READY=1 still work
gpsd = ""
modem = false
""")
    env = dict(os.environ, NOTIFY_SOCKET=sock.name, WATCHDOG_USEC="2000000", PYTHONPATH=str(REPO))
    env.pop("WATCHDOG_PID", None)
    proc = subprocess.Popen([sys.executable, "-m", "agent.cli", "run", "--config", str(config)],
                            cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        def texts() -> list[str]:
            return [m for _, m in sock.messages]

        assert holds_within(lambda: any(m.startswith("READY=1") for m in texts()), 30), texts()
        # frames flow and segments are written: the watchdog is fed about every second
        assert holds_within(lambda: texts().count("WATCHDOG=1") >= 4 and camera.frames > 50, 40), texts()
        assert proc.poll() is None

        camera.stall()
        stalled_at = time.monotonic()
        assert holds_within(lambda: any(m.startswith("STATUS=unhealthy: camera") for m in texts()), 30), \
            texts()
        unhealthy_at = next(t for t, m in sock.messages if m.startswith("STATUS=unhealthy: camera"))
        time.sleep(5)  # 5 watchdog intervals
        late = [t for t, m in sock.messages if m == "WATCHDOG=1" and t > unhealthy_at]
        assert late == [], f"fed {len(late)} times after the camera stalled"
        assert unhealthy_at - stalled_at < 15  # stall_timeout_s + 5 s + a tick
        assert proc.poll() is None  # the process is alive but hung: only systemd can save it now
    finally:
        proc.send_signal(signal.SIGTERM)
        camera.close()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()  # a camera stuck in open(): what systemd does after TimeoutStopSec
            proc.wait(5)
        sock.close()
