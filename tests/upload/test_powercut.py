"""Power cuts: the uploader process is killed with SIGKILL at random moments while it uploads a batch;
after restarts every event is in the bucket exactly once and intact, and agent.db is never corrupt.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from agent.clock import SystemClock
from agent.db import connect, db_path
from agent.state import StateStore
from agent.upload.intake import object_prefix
from agent.upload.manifest import verify_chain
from agent.upload.queue import UploadQueue
from agent.upload.stats import queue_stats
from tests.upload.conftest import ADMIN, REGION, make_config, objects, publish, wait_until
from tests.upload.faultproxy import FaultProxy

ROOT = Path(__file__).resolve().parents[2]
KILLS = 22


def start(cfg_path: Path, log: Any) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "tests.upload.uploader_proc", str(cfg_path)],
        cwd=ROOT,
        stdout=log,
        stderr=subprocess.STDOUT,
    )


def settled(data: Path, since: float) -> bool:
    """The uploader started last has reported, and nothing is left to do."""
    conn = connect(db_path(data))
    try:
        st = StateStore(conn, SystemClock()).read("upload")
        return bool(st and st.updated_at > since + 0.5 and st.state["pending"] == 0)
    finally:
        conn.close()


@pytest.mark.slow
def test_sigkill_at_random_moments_loses_and_duplicates_nothing(
    tmp_path: Path, proxy: FaultProxy, bucket: str, s3_admin: Any
) -> None:
    rng = random.Random(int(os.environ.get("POWERCUT_SEED", "20261128")))
    data = tmp_path / "data"
    raw = {
        "unit": {"id": "herts-mcu-001", "data_dir": str(data)},
        "upload": {
            "endpoint_url": proxy.url,
            "region": REGION,
            "bucket": bucket,
            **{
                "access_key_id": ADMIN["aws_access_key_id"],
                "secret_access_key": ADMIN["aws_secret_access_key"],
            },
            "multipart_threshold_mb": 5,
            "part_size_mb": 5,
            "timeout_s": 3,
            "monthly_budget_mb": 0,
        },
    }
    cfg_path = tmp_path / "cfg.json"
    cfg_path.write_text(json.dumps(raw))
    cfg = make_config(data, proxy.url, bucket, multipart_threshold_mb=5, part_size_mb=5)
    proxy.link.rate_bps = 60e6  # slow enough that kills land mid-part
    base = time.time() - 3600
    records = [
        publish(data, base + i * 30, os.urandom(rng.choice([12_000_000, 11_000_000, 300_000])))
        for i in range(6)
    ]
    kills = 0
    with open(tmp_path / "uploader.log", "ab") as log:
        while kills < KILLS:
            proc = start(cfg_path, log)
            time.sleep(rng.uniform(1.2, 3.0))
            proc.send_signal(signal.SIGKILL)
            proc.wait(10)
            kills += 1
            if kills % 4 == 0:  # more events arrive while the uploader is dead
                records.append(
                    publish(data, base + len(records) * 30, os.urandom(rng.choice([7_000_000, 80_000])))
                )
        final_start = time.time()
        proc = start(cfg_path, log)
        try:
            want = {
                object_prefix(cfg, r) + n
                for r in records
                for n in ("clip.mp4", "snapshot.jpg", "manifest.json")
            }
            wait_until(lambda: set(objects(s3_admin, bucket)) >= want, 90, "every event after the kills")
            wait_until(lambda: settled(data, final_start), 30, "the last uploader to report an empty queue")
        finally:
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(20) == 0
    assert kills >= 20
    resumed = (tmp_path / "uploader.log").read_text().count("resuming upload with")
    assert resumed >= 1, "no kill landed in the middle of a multipart upload"
    assert set(objects(s3_admin, bucket)) == want  # exactly once: nothing extra, nothing missing
    for r in records:
        for f in r.files:
            obj = s3_admin.get_object(Bucket=bucket, Key=object_prefix(cfg, r) + Path(f.path).name)
            assert hashlib.sha256(obj["Body"].read()).hexdigest() == f.sha256 == obj["Metadata"]["sha256"]
    conn = connect(db_path(data))
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    q = UploadQueue(conn)
    assert queue_stats(q.conn).pending == 0 and queue_stats(q.conn).failed == 0
    order = [r[0] for r in conn.execute("SELECT event_id FROM upload_events ORDER BY rowid")]
    assert sorted(order) == sorted(r.event_id for r in records)
    manifests = [
        s3_admin.get_object(Bucket=bucket, Key=object_prefix(cfg, r) + "manifest.json")["Body"].read()
        for r in sorted(records, key=lambda r: order.index(r.event_id))
    ]
    verify_chain(manifests)  # kills during intake never broke or forked the manifest chain
