"""`cctv-agent status`: the unit's state from agent.db and the probes, as a table or JSON; a bad
config exits 2 with one line."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from agent.cli import main
from agent.clock import SystemClock
from agent.db import connect, db_path
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
