"""demo.admin_batch: the control room's CLI commands in one process, each as its console script would
run it (exit status, stdout, stderr, stdin), stopping at the first one that fails."""

from __future__ import annotations

from pathlib import Path

import pytest

from demo.admin_batch import run_all


def test_commands_run_in_order_with_their_own_stdin_and_the_first_failure_stops_the_batch(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CONTROL_ROOM_INSTANCE_DIR", str(tmp_path))
    monkeypatch.setenv("CONTROL_ROOM_DATABASE_URL", f"sqlite:///{tmp_path / 'cr.db'}")
    done = run_all([
        {"argv": ["db", "upgrade"]},
        {"argv": ["create-council", "stalbans", "St Albans City and District Council"]},
        {"argv": ["create-user", "op", "--role", "operator", "--council", "stalbans", "--password-stdin"],
         "stdin": "a long enough password 1\n"},
        {"argv": ["create-unit", "sac-mcu-01", "--council", "nowhere", "--name", "x"]},  # no such council
        {"argv": ["create-council", "watford", "Watford Borough Council"]},
    ])
    assert [r["code"] for r in done] == [0, 0, 0, 2]  # the last command never ran
    assert "council stalbans created" in done[1]["stdout"]
    assert "user op (operator, stalbans) created" in done[2]["stdout"]
    assert "nowhere" in done[3]["stderr"] and done[3]["stdout"] == ""
    assert run_all([{"argv": ["no-such-command"]}])[0]["code"] == 2  # argparse's exit, caught
