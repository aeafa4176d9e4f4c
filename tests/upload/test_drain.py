"""`cctv-agent uploads --drain`: everything queued goes up with the agent stopped, with progress lines;
a link that stays down ends in exit 1 at the timeout with nothing lost."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from agent.cli import main
from agent.db import connect, db_path
from agent.upload.intake import object_prefix
from agent.upload.stats import queue_stats
from tests.upload.conftest import ADMIN, REGION, UNIT, make_config, objects


def write_config(path: Path, data_dir: Path, endpoint: str, bucket: str) -> Path:
    path.write_text(
        f'[unit]\nid = "{UNIT}"\ndata_dir = "{data_dir}"\n'
        f'[upload]\nendpoint_url = "{endpoint}"\nregion = "{REGION}"\nbucket = "{bucket}"\n'
        f'access_key_id = "{ADMIN["aws_access_key_id"]}"\n'
        f'secret_access_key = "{ADMIN["aws_secret_access_key"]}"\n'
        "monthly_budget_mb = 0.0\ntimeout_s = 5.0\n[status]\nenabled = false\n"
    )
    os.chmod(path, 0o600)
    return path


def test_drain_uploads_every_queued_event_and_exits_0(
    tmp_path: Path, moto_url: str, bucket: str, s3_admin: Any, publish_events: Any, capsys: Any
) -> None:
    data = tmp_path / "data"
    records = publish_events(3, clip_size=200_000)  # recorded while the agent had no link, then stopped
    cfg_file = write_config(tmp_path / "agent.toml", data, moto_url, bucket)

    assert main(["uploads", "--config", str(cfg_file), "--drain", "--timeout", "60"]) == 0

    cfg = make_config(data, moto_url, bucket)
    want = {object_prefix(cfg, r) + n for r in records for n in ("clip.mp4", "snapshot.jpg", "manifest.json")}
    assert want <= set(objects(s3_admin, bucket))
    err = capsys.readouterr().err
    assert f"draining {UNIT}" in err and "drained in" in err and "100%" in err  # plain lines: not a TTY
    assert "\r" not in err


def test_drain_gives_up_at_the_timeout_with_exit_1_and_keeps_the_queue(
    tmp_path: Path, bucket: str, publish_events: Any, proxy: Any, capsys: Any
) -> None:
    data = tmp_path / "data"
    publish_events(2, clip_size=100_000)
    proxy.cut()  # the 4G link is down for the whole drain
    cfg_file = write_config(tmp_path / "agent.toml", data, proxy.url, bucket)

    assert main(["uploads", "--config", str(cfg_file), "--drain", "--timeout", "3"]) == 1

    assert "NOT drained" in capsys.readouterr().err
    conn = connect(db_path(data))
    try:
        st = queue_stats(conn)
    finally:
        conn.close()
    assert st.pending + st.active > 0 and st.failed == 0  # waiting for the link, nothing lost


def test_drain_refuses_a_bad_timeout_and_a_unit_that_never_ran(
    tmp_path: Path, moto_url: str, bucket: str, capsys: Any
) -> None:
    cfg_file = write_config(tmp_path / "agent.toml", tmp_path / "nothing", moto_url, bucket)
    assert main(["uploads", "--config", str(cfg_file), "--drain", "--timeout", "0"]) == 2
    assert main(["uploads", "--config", str(cfg_file), "--drain"]) == 2
    err = capsys.readouterr().err
    assert "--timeout must be positive" in err and "has the agent run here?" in err
    assert not (tmp_path / "nothing").exists()
