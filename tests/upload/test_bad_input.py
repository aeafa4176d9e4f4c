"""Bad input: wrong endpoint, wrong credentials, missing bucket, unreadable or vanished clip, corrupt
outbox record. Each gives one clear logged error and a visible queue state; no other event is lost.
"""

from __future__ import annotations

import json
import logging
import shutil
import uuid
from pathlib import Path
from typing import Any

import pytest

from agent.cli import main as cli_main
from agent.db import connect, db_path
from agent.events.outbox import OUTBOX_DIR
from agent.state import StateStore
from agent.upload.intake import object_prefix
from agent.upload.queue import JobState, UploadQueue
from tests.upload.conftest import IAM_BUCKET, REGION, free_port, make_config, objects, wait_until

UNIT_TOML = """
[unit]
id = "herts-mcu-001"
data_dir = "{data}"
[upload]
bucket = "b"
"""


def job_states(data: Path) -> dict[tuple[str, str], tuple[str, str | None]]:
    q = UploadQueue.open(connect(db_path(data)))
    rows = q.conn.execute("SELECT event_id, role, state, last_error FROM upload_jobs").fetchall()
    return {(r[0], r[1]): (r[2], r[3]) for r in rows}


def upload_state(data: Path) -> dict[str, Any]:
    st = StateStore(connect(db_path(data)), clock=None).read("upload")  # type: ignore[arg-type]
    return st.state if st else {}


def test_wrong_endpoint_keeps_every_event_pending_and_says_why(
    tmp_path: Path, service: Any, publish_events: Any, caplog: pytest.LogCaptureFixture
) -> None:
    data = tmp_path / "data"
    endpoint = f"http://127.0.0.1:{free_port()}"
    publish_events(2)
    service(make_config(data, endpoint, "cctv-footage", timeout_s=1))
    wait_until(
        lambda: "Could not connect" in (upload_state(data).get("last_error") or ""), 15, "error in status"
    )
    assert any(endpoint in r.getMessage() and r.levelno == logging.WARNING for r in caplog.records)
    states = job_states(data)
    assert len(states) == 6 and {s for s, _ in states.values()} <= {"pending", "active"}
    assert upload_state(data)["failed"] == 0  # a transport error waits; it never exhausts a budget


def test_wrong_credentials_are_refused_loudly_and_nothing_is_lost(
    tmp_path: Path,
    enforced: tuple[str, dict[str, str], dict[str, str]],
    service: Any,
    publish_events: Any,
    caplog: pytest.LogCaptureFixture,
) -> None:
    url, _, unit_creds = enforced
    data = tmp_path / "data"
    bad = {"aws_access_key_id": unit_creds["aws_access_key_id"], "aws_secret_access_key": "wrong" * 8}
    publish_events(2)
    service(make_config(data, url, IAM_BUCKET, creds=bad))
    wait_until(lambda: upload_state(data).get("failed", 0) >= 2, 15, "refused jobs in status")
    refused = [e for s, e in job_states(data).values() if s == JobState.REFUSED.value]
    assert refused and all("SignatureDoesNotMatch" in (e or "") or "403" in (e or "") for e in refused), (
        refused
    )
    assert any("UPLOAD REFUSED" in r.getMessage() and r.levelno == logging.ERROR for r in caplog.records)
    assert all(s != JobState.DONE.value for s, _ in job_states(data).values())


def test_missing_bucket_is_refused_then_everything_arrives_once_it_exists(
    tmp_path: Path, moto_url: str, s3_admin: Any, service: Any, publish_events: Any
) -> None:
    data = tmp_path / "data"
    name = f"cctv-later-{uuid.uuid4().hex[:8]}"
    records = publish_events(2)
    cfg = make_config(data, moto_url, name)
    service(cfg)
    wait_until(
        lambda: any("NoSuchBucket" in (e or "") for _, e in job_states(data).values()), 15, "NoSuchBucket"
    )
    wait_until(lambda: upload_state(data).get("failed", 0) >= 1, 10, "refusal in status")
    s3_admin.create_bucket(Bucket=name, CreateBucketConfiguration={"LocationConstraint": REGION})
    want = {object_prefix(cfg, r) + n for r in records for n in ("clip.mp4", "snapshot.jpg", "manifest.json")}
    wait_until(lambda: want <= set(objects(s3_admin, name)), 30, "uploads after the bucket appeared")


def test_vanished_and_unreadable_clips_are_reported_and_other_events_still_go(
    tmp_path: Path,
    moto_url: str,
    bucket: str,
    s3_admin: Any,
    service: Any,
    publish_events: Any,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    data = tmp_path / "data"
    gone, unreadable, good = publish_events(3)
    (data / gone.file("clip").path).unlink()
    clip = data / unreadable.file("clip").path
    clip.unlink()
    clip.mkdir()  # as root nothing is unreadable by mode; a directory in its place cannot be read
    cfg = make_config(data, moto_url, bucket)
    service(cfg)
    keys = {object_prefix(cfg, good) + n for n in ("clip.mp4", "snapshot.jpg", "manifest.json")}
    keys |= {object_prefix(cfg, r) + n for r in (gone, unreadable) for n in ("snapshot.jpg", "manifest.json")}
    wait_until(lambda: keys <= set(objects(s3_admin, bucket)), 60, "every readable file")
    wait_until(lambda: upload_state(data).get("failed") == 2, 10, "two failed clips in status")
    clips = [(rec.event_id, "clip") for rec in (gone, unreadable)]
    # a MISSING clip is rechecked now and then (ACTIVE meanwhile): wait for both to be seen MISSING
    def both_missing() -> dict[tuple[str, str], tuple[str, str | None]] | None:
        states = job_states(data)
        return states if all(states[c][0] == JobState.MISSING.value for c in clips) else None

    states = wait_until(both_missing, 10, "both clips MISSING")
    for rec, c in zip((gone, unreadable), clips, strict=True):
        assert str(data / rec.file("clip").path) in (states[c][1] or "")
    problems = [r.getMessage() for r in caplog.records if "UPLOAD FILE PROBLEM" in r.getMessage()]
    assert any(gone.event_id in m for m in problems) and any(unreadable.event_id in m for m in problems)
    cfg_file = tmp_path / "agent.toml"
    cfg_file.write_text(UNIT_TOML.replace("{data}", str(data)))

    def report() -> list[str]:
        capsys.readouterr()
        assert cli_main(["uploads", "--config", str(cfg_file)]) == 0
        return capsys.readouterr().out.splitlines()

    # the last verified upload may still be marked in progress for a moment: wait for the settled report
    settled = "pending 0  in progress 0  held by budget 0  failed 2"
    lines = wait_until(lambda: (out := report()) and out[0].startswith(settled) and out, 30, settled)
    assert any(
        line.split()[:3] == ["missing", gone.event_id, "clip"] and "No such file" in line for line in lines
    )


def test_corrupt_outbox_record_is_rejected_visibly_and_others_upload(
    tmp_path: Path,
    moto_url: str,
    bucket: str,
    s3_admin: Any,
    service: Any,
    publish_events: Any,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    data = tmp_path / "data"
    (good,) = publish_events(1)
    bad = data / OUTBOX_DIR / "herts-mcu-001-20261128T010203.000Z.json"
    bad.write_bytes(b'{"schema": 1, "event_id": ')
    cfg = make_config(data, moto_url, bucket)
    service(cfg)
    want = {object_prefix(cfg, good) + n for n in ("clip.mp4", "snapshot.jpg", "manifest.json")}
    wait_until(lambda: want <= set(objects(s3_admin, bucket)), 20, "the good event")
    assert any(
        "corrupt event record" in r.getMessage() and r.levelno == logging.ERROR for r in caplog.records
    )
    wait_until(lambda: upload_state(data).get("failed") == 1, 10, "rejected record in status")
    cfg_file = tmp_path / "agent.toml"
    cfg_file.write_text(UNIT_TOML.replace("{data}", str(data)))
    assert cli_main(["uploads", "--config", str(cfg_file), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["rejected_events"] == 1 and "corrupt event record" in report["rejected"][0]["error"]
    assert report["pending"] == 0 and report["last_success_at"]
    assert bad.read_bytes() == b'{"schema": 1, "event_id": '  # the outbox is never edited


def test_uploads_command_lists_the_queue_and_fails_cleanly_without_a_database(
    tmp_path: Path, publish_events: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg_file = tmp_path / "agent.toml"
    cfg_file.write_text(UNIT_TOML.replace("{data}", str(tmp_path / "nothing")))
    assert cli_main(["uploads", "--config", str(cfg_file)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "no agent database" in err[0]
    publish_events(1)
    cfg_file.write_text(UNIT_TOML.replace("{data}", str(tmp_path / "data")))
    UploadQueue.open(connect(db_path(tmp_path / "data")))
    assert cli_main(["uploads", "--config", str(cfg_file), "--request", "no-such-event"]) == 2
    assert "no queued event 'no-such-event'" in capsys.readouterr().err
    shutil.rmtree(tmp_path / "nothing", ignore_errors=True)


def test_an_unset_bucket_is_a_clear_config_error(tmp_path: Path) -> None:
    from agent.clock import SystemClock
    from agent.errors import ConfigError
    from agent.upload.worker import UploadService

    with pytest.raises(ConfigError, match="upload.bucket"):
        UploadService(make_config(tmp_path / "data", "http://127.0.0.1:1", ""), SystemClock())


@pytest.mark.parametrize(
    ("endpoint", "ok"),
    [
        ("http://s3.example.org:9000", False),
        ("ftp://s3.example.org", False),
        ("https://s3.example.org:9000", True),
        ("http://127.0.0.1:9000", True),
        ("http://[::1]:9000/", True),
        # user info: the host is s3.example.org, so the secret key's signatures would go out in clear
        ("http://127.0.0.1:9000@s3.example.org/", False),
        ("http://localhost:80@s3.example.org", False),
        ("http://localhost\\@s3.example.org", False),
    ],
)
def test_s3_endpoint_must_use_tls_except_on_this_machine(endpoint: str, ok: bool) -> None:
    from agent.config import parse_config
    from agent.errors import ConfigError

    raw = {"unit": {"id": "herts-mcu-001"}, "upload": {"endpoint_url": endpoint}}
    if ok:
        assert parse_config(raw, env={}).upload.endpoint_url == endpoint
    else:
        with pytest.raises(ConfigError, match="upload.endpoint_url: .*https://"):
            parse_config(raw, env={})
