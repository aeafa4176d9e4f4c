"""Power cuts: the uploader process is killed with SIGKILL at points chosen from the queue's own state
(a part recorded as sent, the middle of a part, a job just done, an event just queued) while it uploads
a growing batch. After every kill after a recorded part the next start resumes that upload with the
part kept; at the end every event is in the bucket exactly once and intact, agent.db is not corrupt,
and the data budget counted what went through the link (within 2 %).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from agent.clock import SystemClock
from agent.db import connect, db_path
from agent.events.outbox import EventRecord
from agent.state import StateStore
from agent.upload.intake import object_prefix
from agent.upload.manifest import verify_chain
from agent.upload.queue import UploadQueue, create_schema
from agent.upload.stats import queue_stats
from tests.upload.conftest import ADMIN, REGION, make_config, objects, publish, wait_until
from tests.upload.faultproxy import FaultProxy

ROOT = Path(__file__).resolve().parents[2]
KILLS = 12
POINTS = ("part", "mid-part", "part", "mid-part", "job-done", "intake")
PART = 5 * 1024 * 1024
CLIP = 3 * PART  # three full parts, each about a second on this link


def start(cfg_path: Path, log: Path) -> subprocess.Popen[bytes]:
    with open(log, "wb") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "tests.upload.uploader_proc", str(cfg_path)],
            cwd=ROOT,
            stdout=out,
            stderr=subprocess.STDOUT,
        )


def scalar(data: Path, sql: str) -> Any:
    conn = connect(db_path(data))
    try:
        row = conn.execute(sql).fetchone()
        return row[0] if row else None
    finally:
        conn.close()


def active_clip_parts(data: Path) -> tuple[int, int, int] | None:
    """(job id, parts recorded, parts planned) of the multipart upload in progress, if there is one."""
    conn = connect(db_path(data))
    try:
        row = conn.execute(
            "SELECT j.id, j.size, j.part_size, "
            "(SELECT COUNT(*) FROM upload_parts p WHERE p.job_id = j.id) AS n "
            "FROM upload_jobs j WHERE j.upload_id IS NOT NULL AND j.state != 'done' ORDER BY j.id LIMIT 1"
        ).fetchone()
    finally:
        conn.close()
    return (row["id"], row["n"], -(-row["size"] // row["part_size"])) if row else None


def clips_left(data: Path) -> int:
    """Multipart clips queued and not yet done."""
    return int(
        scalar(
            data,
            "SELECT COUNT(*) FROM upload_jobs WHERE kind = 'clip' AND state != 'done' AND size >= 5242880",
        )
        or 0
    )


def done_jobs(data: Path) -> int:
    return int(scalar(data, "SELECT COUNT(*) FROM upload_jobs WHERE state = 'done'") or 0)


def events(data: Path) -> int:
    return int(scalar(data, "SELECT COUNT(*) FROM upload_events") or 0)


def budget_used(data: Path) -> int:
    return int(
        scalar(data, "SELECT SUM(CAST(value AS INTEGER)) FROM upload_meta WHERE name LIKE 'usage:%'") or 0
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
def test_sigkill_at_queue_chosen_points_loses_and_duplicates_nothing(
    tmp_path: Path,
    proxy: FaultProxy,
    bucket: str,
    s3_admin: Any,
    record_property: Callable[[str, object], None],
) -> None:
    data = tmp_path / "data"
    raw = {
        "unit": {"id": "herts-mcu-001", "data_dir": str(data)},
        "upload": {
            "endpoint_url": proxy.url,
            "region": REGION,
            "bucket": bucket,
            "access_key_id": ADMIN["aws_access_key_id"],
            "secret_access_key": ADMIN["aws_secret_access_key"],
            "multipart_threshold_mb": 5,
            "part_size_mb": 5,
            "timeout_s": 3,
            "monthly_budget_mb": 0,
        },
    }
    cfg_path = tmp_path / "cfg.json"
    cfg_path.write_text(json.dumps(raw))
    cfg = make_config(data, proxy.url, bucket, multipart_threshold_mb=5, part_size_mb=5)
    proxy.link.rate_bps = 40e6  # a 5 MiB part takes about a second: kill points are easy to hit
    base = time.time() - 3600
    records: list[EventRecord] = []

    def new_event(size: int = CLIP) -> None:
        records.append(publish(data, base + len(records) * 30, os.urandom(size)))

    for size in (CLIP, 300_000, CLIP):
        new_event(size)
    create_schema(connect(db_path(data)))  # what the first uploader does at open; the test reads it

    def part_recorded(before: tuple[int, int, int] | None) -> Callable[[], bool]:
        def cond() -> bool:  # a part recorded in this run, and more of that upload still to send
            now = active_clip_parts(data)
            if now is None or not 1 <= now[1] < now[2]:
                return False
            return before is None or now[0] != before[0] or now[1] > before[1]

        return cond

    def mid_part(up: int) -> Callable[[], bool]:
        return lambda: active_clip_parts(data) is not None and proxy.link.bytes_up > up + PART // 2

    def unqueued() -> int:
        return len(records) - events(data)

    logs: list[Path] = []
    part_kills: list[int] = []  # runs killed right after a part was recorded
    mid_upload = 0
    for kill in range(KILLS):
        point = POINTS[kill % len(POINTS)]
        while point in ("part", "mid-part") and clips_left(data) + unqueued() < 2:
            new_event()  # keep multipart uploads in the queue for these kill points
        before_parts, before_done, before_events = active_clip_parts(data), done_jobs(data), events(data)
        before_up = proxy.link.bytes_up
        logs.append(tmp_path / f"uploader-{kill:02d}.log")
        proc = start(cfg_path, logs[-1])
        try:
            if point == "part":
                wait_until(part_recorded(before_parts), 60, f"kill {kill}: a part recorded as sent")
                part_kills.append(kill)
                mid_upload += 1
            elif point == "mid-part":
                wait_until(mid_part(before_up), 60, f"kill {kill}: the middle of a part")
                mid_upload += 1
            elif point == "job-done":
                wait_until(lambda n=before_done: done_jobs(data) > n, 60, f"kill {kill}: a job done")
            else:
                new_event(200_000)
                wait_until(lambda n=before_events: events(data) > n, 60, f"kill {kill}: an event queued")
        finally:
            proc.send_signal(signal.SIGKILL)
            proc.wait(10)
        if kill % 4 == 3:  # more events arrive while the uploader is dead
            new_event(7_000_000 if kill % 8 == 3 else 80_000)

    final_start = time.time()
    logs.append(tmp_path / "uploader-final.log")
    proc = start(cfg_path, logs[-1])
    try:
        want = {
            object_prefix(cfg, r) + n for r in records for n in ("clip.mp4", "snapshot.jpg", "manifest.json")
        }
        wait_until(lambda: set(objects(s3_admin, bucket)) >= want, 120, "every event after the kills")
        wait_until(lambda: settled(data, final_start), 30, "the last uploader to report an empty queue")
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(20) == 0

    # every kill after a recorded part was followed by a resume that kept at least one part
    for kill in part_kills:
        resumed = re.findall(r"resuming upload with (\d+) of", logs[kill + 1].read_text())
        assert resumed and int(resumed[0]) >= 1, f"the start after kill {kill} did not resume: {resumed}"
    assert len(part_kills) >= 4 and mid_upload >= 8

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

    # The budget counted what crossed the link, re-sends included, kills notwithstanding, within 2 %
    # either way (the issue found 135 MB counted for 250 MB sent). The meter counts bytes as they are
    # handed to the socket and persists them every 64 KiB; a kill -9 with unread data in a socket makes
    # the kernel reset the connection and drop what it held unsent, which the lanes keep under 128 KiB
    # (TCP_NOTSENT_LOWAT). The proxy counts what its TCP received from the unit, read by it or not.
    used, sent = budget_used(data), proxy.link.bytes_up_sent
    deviation = (used - sent) / sent
    record_property("kills", KILLS)
    record_property("kills_mid_upload", mid_upload)
    record_property("budget_bytes", used)
    record_property("link_bytes_up", sent)
    record_property("budget_deviation_pct", round(100 * deviation, 3))
    assert abs(deviation) <= 0.02, f"budget {used} bytes, the unit sent {sent} ({100 * deviation:+.2f} %)"
