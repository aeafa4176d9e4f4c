"""The real agent on real footage while its control room hangs: segments keep being written at
their normal pace, and when the control room answers again the latest state arrives."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from agent.db import db_path
from agent.status.cli import read_state
from tests.status.conftest import TOKEN, ControlRoom
from tests.status.test_reload_agent import CLIP, REPO, push

SEGMENT_S = 2


def last_segment(data: Path) -> float:
    states = read_state(db_path(data))[0]
    row = states.get("recording")
    return float(row.state.get("last_segment_at") or 0) if row is not None else 0.0


@pytest.mark.slow
@pytest.mark.skipif(not CLIP.exists(), reason=f"real footage not found: {CLIP} (see ../shared/data)")
def test_hanging_control_room_does_not_hold_up_recording(tmp_path: Path, control_room: ControlRoom) -> None:
    control_room.mode = "hang"
    config, data = tmp_path / "agent.toml", tmp_path / "data"
    push(config, data=data, clip=CLIP.resolve(), url=control_room.url, sensitivity=0.5, version="v1")
    env = dict(os.environ, CCTV_STATUS_TOKEN=TOKEN, PYTHONPATH=str(REPO))
    env.pop("NOTIFY_SOCKET", None)
    log = (tmp_path / "agent.log").open("w")
    proc = subprocess.Popen([sys.executable, "-m", "agent.cli", "run", "--config", str(config)],
                            cwd=tmp_path, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        assert control_room.wait_for(lambda: control_room.requests >= 1, timeout=60)  # a POST hangs
        assert control_room.wait_for(lambda: last_segment(data) > 0, timeout=30)
        # watch segments for 10 s while every heartbeat hangs (2 s timeout, retried with backoff)
        seen, changes = last_segment(data), [time.monotonic()]
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            now = last_segment(data)
            if now != seen:
                seen = now
                changes.append(time.monotonic())
            time.sleep(0.1)
        changes.append(time.monotonic())
        gaps = [b - a for a, b in zip(changes, changes[1:], strict=False)]
        assert len(changes) >= 5, changes  # about one segment every 2 s
        assert max(gaps) < 2 * SEGMENT_S + 1.5, gaps
        assert control_room.received == [] and control_room.requests >= 2

        control_room.mode = "ok"
        control_room.release.set()
        assert control_room.wait_for(lambda: control_room.received != [], timeout=60)
        beat = control_room.received[-1]
        assert beat["camera"]["state"] == "ok" and beat["recording"]["state"] == "recording"
        assert proc.poll() is None
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(60)
        finally:
            if proc.poll() is None:
                proc.kill()
            log.close()
