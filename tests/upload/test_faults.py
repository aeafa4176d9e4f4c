"""Faults on the link (through the fault-injecting TCP proxy): cuts, resets mid-clip, stalls."""

from __future__ import annotations

import hashlib
import os
import time
from pathlib import Path
from typing import Any

from agent.clock import SystemClock
from agent.db import connect, db_path
from agent.state import StateStore
from agent.upload.intake import object_prefix
from agent.upload.queue import UploadQueue
from agent.upload.stats import queue_stats
from agent.upload.worker import UploadService
from tests.upload.conftest import FAST, make_config, objects, publish, running, wait_until
from tests.upload.faultproxy import FaultProxy

MIB = 1024 * 1024


def keys_for(cfg: Any, records: list[Any]) -> set[str]:
    return {object_prefix(cfg, r) + Path(f.path).name for r in records for f in r.files} | {
        object_prefix(cfg, r) + "manifest.json" for r in records
    }


def test_events_published_while_the_link_is_cut_all_arrive_when_it_returns(
    tmp_path: Path, proxy: FaultProxy, bucket: str, s3_admin: Any, publish_events: Any
) -> None:
    data = tmp_path / "data"
    cfg = make_config(data, proxy.url, bucket, timeout_s=2)
    proxy.cut()
    svc = UploadService(cfg, SystemClock(), FAST)
    with running(svc):
        records = publish_events(4, clip_size=120_000)
        conn = connect(db_path(data))
        state = StateStore(conn, SystemClock())
        wait_until(lambda: (s := state.read("upload")) and s.state["pending"] >= 8, 30, "jobs queued")
        wait_until(  # the positive signal first: attempts have failed on the cut link, and say so
            lambda: proxy.link.refused >= 3 and (s := state.read("upload")) and s.state["last_error"],
            30,
            "attempts failing while the link is down",
        )
        assert objects(s3_admin, bucket) == {}
        up = state.read("upload")
        assert up is not None and up.state["last_error"] and up.state["failed"] == 0  # waiting, not failed
        proxy.restore()
        wait_until(
            lambda: keys_for(cfg, records) <= set(objects(s3_admin, bucket)), 20, "all events after the cut"
        )
    for r in records:
        clip = s3_admin.get_object(Bucket=bucket, Key=object_prefix(cfg, r) + "clip.mp4")
        assert hashlib.sha256(clip["Body"].read()).hexdigest() == r.file("clip").sha256


def test_reset_in_the_middle_of_a_40mb_clip_resends_at_most_one_part(
    tmp_path: Path, proxy: FaultProxy, bucket: str, s3_admin: Any
) -> None:
    data = tmp_path / "data"
    part = 8 * MIB
    cfg = make_config(data, proxy.url, bucket, part_size_mb=8, multipart_threshold_mb=8, timeout_s=5)
    rec = publish(data, time.time() - 600, os.urandom(40 * 1000 * 1000))
    proxy.reset_after(20 * MIB)  # in the middle of part 3 (after manifest + snapshot + two parts)
    svc = UploadService(cfg, SystemClock(), FAST)
    with running(svc):
        wait_until(lambda: keys_for(cfg, [rec]) <= set(objects(s3_admin, bucket)), 120, "the 40 MB clip")
    assert proxy.link.resets >= 1
    manifest = (data / Path(rec.files[0].path).parent / "manifest.json").stat().st_size
    payload = sum(f.size for f in rec.files) + manifest
    resent = proxy.link.bytes_up - payload
    assert 0 < resent <= part + 64 * 1024, f"re-sent {resent} bytes"  # one part at most, plus HTTP headers
    obj = s3_admin.get_object(Bucket=bucket, Key=object_prefix(cfg, rec) + "clip.mp4")
    body = obj["Body"].read()
    assert body == (data / rec.file("clip").path).read_bytes()
    assert hashlib.sha256(body).hexdigest() == rec.file("clip").sha256 == obj["Metadata"]["sha256"]
    assert obj["ContentType"] == "video/mp4" and obj["Metadata"]["unit-id"] == "herts-mcu-001"
    q = UploadQueue.open(connect(db_path(data)))
    assert (
        queue_stats(q.conn).pending == 0
        and q.conn.execute("SELECT COUNT(*) FROM upload_parts").fetchone()[0] == 0
    )


def test_a_stalled_link_times_out_and_the_upload_completes_when_it_flows_again(
    tmp_path: Path, proxy: FaultProxy, bucket: str, s3_admin: Any, publish_events: Any
) -> None:
    data = tmp_path / "data"
    cfg = make_config(data, proxy.url, bucket, timeout_s=1)
    proxy.link.stalled = True
    svc = UploadService(cfg, SystemClock(), FAST)
    with running(svc):
        records = publish_events(1, clip_size=200_000)
        conn = connect(db_path(data))
        state = StateStore(conn, SystemClock())
        wait_until(
            lambda: (s := state.read("upload")) and s.state["last_error"], 30, "a timeout to be reported"
        )
        error = state.read("upload").state["last_error"].lower()  # type: ignore[union-attr]
        assert "timeout" in error or "stalled" in error
        proxy.restore()
        wait_until(
            lambda: keys_for(cfg, records) <= set(objects(s3_admin, bucket)), 20, "upload after the stall"
        )


class SlowClock(SystemClock):
    """A Pi without a real-time clock that booted with a time two hours behind."""

    def time(self) -> float:
        return super().time() - 7200


def test_request_time_too_skewed_is_corrected_from_the_server_time(
    tmp_path: Path, proxy: FaultProxy, bucket: str, s3_admin: Any, publish_events: Any
) -> None:
    data = tmp_path / "data"
    cfg = make_config(data, proxy.url, bucket)
    proxy.link.max_skew_s = 900  # what S3 allows
    records = publish_events(1)
    svc = UploadService(cfg, SlowClock(), FAST)
    with running(svc):
        wait_until(
            lambda: keys_for(cfg, records) <= set(objects(s3_admin, bucket)), 20, "uploads after correction"
        )
        state = StateStore(connect(db_path(data)), SystemClock())
        wait_until(
            lambda: abs(state.read("upload").state["clock_offset_s"] - 7200) < 5, 5, "offset in status"
        )
