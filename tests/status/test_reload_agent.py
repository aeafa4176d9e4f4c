"""The real agent (`cctv-agent run`) picks up a changed config file while recording: a valid change
reaches the status service (the next heartbeat carries the new config_version) and recording goes
on; an invalid one is refused with one log line and the agent keeps running on the old config."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from agent.db import db_path
from agent.status.cli import read_state
from tests.status.conftest import TOKEN, ControlRoom
from tests.status.test_sdnotify import NotifySocket

REPO = Path(__file__).resolve().parents[2]
CLIP = REPO / ".." / "shared" / "data" / "opencv_vtest_480x360.avi"

CONFIG = """
[unit]
id = "herts-mcu-001"
data_dir = "{data}"

[camera]
source = "file"
device = "{clip}"
width = 480
height = 360
fps = 10
loop = true
pace = "realtime"

[recording]
segment_seconds = 2
bitrate_kbps = 400

[motion]
sensitivity = {sensitivity}

[upload]
enabled = false

[status]
url = "{url}"
interval_s = 3600
timeout_s = 2
config_version = "{version}"
gpsd = ""
modem = false
"""


def push(path: Path, **values: object) -> None:
    """What Ansible's template module does: a temp file in the same folder, then a rename."""
    tmp = path.with_name(".agent.toml.tmp")
    tmp.write_text(CONFIG.format(**values))
    os.replace(tmp, path)


def segments(data: Path) -> int:
    states = read_state(db_path(data))[0]
    row = states.get("recording")
    return 0 if row is None else int(float(row.state.get("last_segment_at") or 0))


@pytest.mark.slow
@pytest.mark.skipif(not CLIP.exists(), reason=f"real footage not found: {CLIP} (see ../shared/data)")
def test_config_change_is_applied_while_recording(tmp_path: Path, control_room: ControlRoom) -> None:
    config, data = tmp_path / "agent.toml", tmp_path / "data"
    values = {"data": data, "clip": CLIP.resolve(), "url": control_room.url, "sensitivity": 0.5}
    push(config, version="v1", **values)
    sock = NotifySocket(f"@cctv-reload-test-{uuid.uuid4().hex}")
    env = dict(os.environ, CCTV_STATUS_TOKEN=TOKEN, PYTHONPATH=str(REPO), NOTIFY_SOCKET=sock.name)
    env.pop("WATCHDOG_USEC", None)
    log = (tmp_path / "agent.log").open("w+")
    proc = subprocess.Popen([sys.executable, "-m", "agent.cli", "run", "--config", str(config)],
                            cwd=tmp_path, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        def versions() -> list[str]:
            return [doc.get("config_version") for doc in control_room.received]

        assert control_room.wait_for(lambda: "v1" in versions(), timeout=60), log_text(log)
        assert control_room.wait_for(lambda: segments(data) > 0, timeout=30)

        push(config, version="v2", **(values | {"sensitivity": 0.8}))
        assert control_room.wait_for(lambda: "v2" in versions(), timeout=30), log_text(log)
        before = segments(data)
        assert control_room.wait_for(lambda: segments(data) > before, timeout=30)  # still recording

        push(config, version="v3", **(values | {"sensitivity": 7}))  # out of range: refused
        assert control_room.wait_for(lambda: "config change refused" in log_text(log), timeout=30)
        refusals = [ln for ln in log_text(log).splitlines() if "config change refused" in ln]
        assert len(refusals) == 1 and "motion.sensitivity" in refusals[0]
        before = segments(data)
        assert control_room.wait_for(lambda: segments(data) > before, timeout=30)
        assert proc.poll() is None and "v3" not in versions()
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            assert proc.wait(60) == 0, log_text(log)  # clean stop: open segment and event finished
            messages = [m for _, m in sock.messages]
            ready = [i for i, m in enumerate(messages) if m.startswith("READY=1")]
            assert ready and "STOPPING=1" in messages[ready[0]:], messages
            # systemd hears of the stop when the signal arrives, before the segment is finished
            assert any(m.startswith("STOPPING=1\nSTATUS=stopping") for m in messages[ready[0]:]), messages
        finally:
            if proc.poll() is None:
                proc.kill()
            log.close()
            sock.close()


def log_text(log) -> str:
    log.flush()
    log.seek(0)
    text = log.read()
    log.seek(0, os.SEEK_END)
    return text
