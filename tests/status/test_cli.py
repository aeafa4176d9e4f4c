"""`cctv-agent status`: the unit's state from agent.db and the probes, as a table or JSON; a bad
config exits 2 with one line."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from agent.cli import main
from agent.clock import SystemClock
from agent.db import connect, db_path
from agent.recording.index import SegmentIndex
from agent.state import StateStore
from tests.status.schema import documented_heartbeat

CONFIG = """
[unit]
id = "herts-mcu-001"
data_dir = "{data}"

[status]
gpsd = ""
modem = false
"""


def write_config(tmp_path: Path) -> Path:
    path = tmp_path / "agent.toml"
    path.write_text(CONFIG.format(data=tmp_path / "data"))
    return path


def report_states(tmp_path: Path) -> None:
    conn = connect(db_path(tmp_path / "data"))
    store = StateStore(conn, SystemClock())
    now = SystemClock().time()
    store.report("camera", state="stalled", fps=0.0, last_frame_at=now - 30, restarts=2,
                 error="stalled: no frame for 20 s")
    store.report("recording", state="recording", last_segment_at=now - 5, segment_seconds=10)
    store.report("upload", alive_at=now, pending=3, pending_bytes=5_242_880, oldest_pending_age_s=42,
                 failed=0, last_success_at=now - 60, held_by_budget=1, used_bytes=123_456_789,
                 budget_bytes=8_000_000_000, period_start="2026-11-01T00:00:00Z")
    store.report("status", seq=41, last_sent_at="2026-11-28T13:04:26.123Z", failures=0, last_error=None,
                 revoked=True, acked=[], config_version_expected="2026-12-01.1")
    store.increment("events_lost", 3)
    conn.close()


def test_json_output(tmp_path: Path, capsys) -> None:
    report_states(tmp_path)
    assert main(["status", "--config", str(write_config(tmp_path)), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert set(documented_heartbeat()) <= set(report)
    assert report["camera"]["state"] == "stalled" and report["camera"]["restarts"] == 2
    assert report["uploads"]["pending"] == 3 and report["disk"]["events_lost"] == 3
    assert report["disk"]["free_bytes"] > 0  # probed live from data_dir
    assert report["heartbeat"]["revoked"] is True and report["seq"] == 41
    assert 0 <= report["updated_s_ago"]["camera"] < 60


def test_table_output(tmp_path: Path, capsys) -> None:
    report_states(tmp_path)
    assert main(["status", "--config", str(write_config(tmp_path))]) == 0
    lines = capsys.readouterr().out.splitlines()
    table = {line.split()[0]: line for line in lines}
    assert "stalled" in table["camera"] and "stalled: no frame for 20 s" in table["camera"]
    assert "3 pending (5.2 MB)" in table["uploads"]
    assert "REVOKED" in table["heartbeat"] and "expects config 2026-12-01.1" in table["heartbeat"]
    assert "123.5 MB used of 8.0 GB" in table["data"]
    assert "STALE" not in table


def test_before_the_agent_ever_ran(tmp_path: Path, capsys) -> None:
    assert main(["status", "--config", str(write_config(tmp_path))]) == 0
    out = capsys.readouterr().out
    assert "camera     no report" in out and "heartbeat  never sent" in out
    assert not (tmp_path / "data" / "agent.db").exists()  # looking changes nothing


def test_bad_config_exits_2_with_one_line(tmp_path: Path) -> None:
    path = write_config(tmp_path)
    path.write_text(path.read_text().replace("[status]", "[status]\nurl = 'http://control.example.org'"))
    done = subprocess.run([sys.executable, "-m", "agent.cli", "status", "--config", str(path)],
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 2
    assert len(done.stderr.strip().splitlines()) == 1 and done.stdout == ""
    assert "status.url" in done.stderr and "https" in done.stderr


def test_unreadable_database_exits_2_with_one_line(tmp_path: Path, capsys) -> None:
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "agent.db").write_bytes(b"this is not a database" * 100)
    assert main(["status", "--config", str(write_config(tmp_path))]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "agent.db" in err and "not a database" in err


def _agent_row(tmp_path: Path, **state) -> None:
    conn = connect(db_path(tmp_path / "data"))
    StateStore(conn, SystemClock()).report("agent", **state)
    conn.close()


def _boot_id() -> str:
    return Path("/proc/sys/kernel/random/boot_id").read_text().strip()


def test_a_running_agent_is_told_from_a_stopped_or_dead_one(tmp_path: Path, capsys, request) -> None:
    """`up 457 s` used to be all it said, whether the agent ran or not."""
    if not Path("/proc/sys/kernel/random/boot_id").exists():
        pytest.skip("needs Linux /proc for the boot id")
    cfg = str(write_config(tmp_path))
    report_states(tmp_path)
    now = SystemClock().time()
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait(30)
    # a live process that looks like the agent (its command line names agent.cli)
    agent = subprocess.Popen([sys.executable, "-c", "import sys; sys.stdin.read()", "agent.cli"],
                             stdin=subprocess.PIPE)
    request.addfinalizer(lambda: (agent.kill(), agent.wait(30)))
    cases = [  # the agent row runner.py writes -> what status says
        ({"state": "running", "pid": agent.pid, "boot_id": _boot_id(), "started_at": now}, "running",
         f"running (pid {agent.pid})"),
        ({"state": "running", "pid": os.getpid(), "boot_id": _boot_id(), "started_at": now}, "dead",
         "NOT RUNNING"),  # the pid was reused by another program
        ({"state": "stopped", "pid": 4242, "boot_id": _boot_id(), "started_at": now - 60, "stopped_at": now},
         "stopped", "STOPPED at"),
        ({"state": "running", "pid": dead.pid, "boot_id": _boot_id(), "started_at": now}, "dead",
         "NOT RUNNING: it stopped without shutting down"),
        ({"state": "running", "pid": agent.pid, "boot_id": "another-boot", "started_at": now}, "dead",
         "NOT RUNNING"),
    ]
    for row, state, text in cases:
        _agent_row(tmp_path, **row)
        assert main(["status", "--config", cfg, "--json"]) == 0
        assert json.loads(capsys.readouterr().out)["agent"]["state"] == state
        assert main(["status", "--config", cfg]) == 0
        table = {line.split()[0]: line for line in capsys.readouterr().out.splitlines()}
        assert text in table["agent"] and "host up" in table["unit"]


def test_the_last_known_clock_state_when_no_probe_answers(tmp_path: Path, capsys) -> None:
    """A stopped agent on a unit without chrony/timedatectl: the clock as the last segment recorded it."""
    report_states(tmp_path)
    conn = connect(db_path(tmp_path / "data"))
    SegmentIndex(conn).add(tmp_path / "seg.mp4", 1_767_225_600.0, 1_767_225_610.0, 100, 1, "0" * 64, True)
    conn.close()
    assert main(["status", "--config", str(write_config(tmp_path)), "--json"]) == 0
    clock = json.loads(capsys.readouterr().out)["clock"]
    if clock["source"] in ("chrony", "timedatectl"):  # this machine can answer: nothing to fall back on
        return
    assert clock == {"synced": True, "offset_s": None, "source": "last segment",
                     "as_of": "2026-01-01T00:00:10.000Z"}
