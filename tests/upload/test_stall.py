"""Slow links: a part whose bytes take longer to cross the link than the timeout still arrives (the
link watch follows bytes moving, not a fixed read timeout), cuts cost at most the part in flight, and
part sizes follow the measured link. The real slow rates (256k, 512k, 2M) are in benchmarks/upload.py;
here the same shape is scaled up (16 Mbit/s with a 1 s timeout = 2 Mbit/s with 8 s) to run in seconds.
"""

from __future__ import annotations

import hashlib
import os
import socket
import time
from pathlib import Path
from typing import Any

import boto3
import botocore.config
import botocore.exceptions
import pytest

from agent.clock import SystemClock
from agent.db import connect, db_path
from agent.state import StateStore
from agent.upload.intake import object_prefix
from agent.upload.link import MIN_PART, LinkRate, Transfer, choose_part_size
from agent.upload.worker import UploadService
from tests.upload.conftest import ADMIN, FAST, REGION, make_config, objects, publish, running, wait_until
from tests.upload.faultproxy import FaultProxy

MIB = 1024 * 1024
RATE = 16e6  # bits/s; the kernel and proxy buffers (~5 MB on loopback) take > 2 s to drain
CLIP = 2 * MIN_PART + 600_000  # three parts


def parts_in(data: Path) -> int:
    conn = connect(db_path(data))
    try:
        return int(conn.execute("SELECT COUNT(*) FROM upload_parts").fetchone()[0])
    finally:
        conn.close()


def arrived(s3: Any, bucket: str, cfg: Any, rec: Any) -> bool:
    return object_prefix(cfg, rec) + "clip.mp4" in objects(s3, bucket)


def check_clip(s3: Any, bucket: str, cfg: Any, rec: Any, data: Path) -> None:
    body = s3.get_object(Bucket=bucket, Key=object_prefix(cfg, rec) + "clip.mp4")["Body"].read()
    assert body == (data / rec.file("clip").path).read_bytes()
    assert hashlib.sha256(body).hexdigest() == rec.file("clip").sha256


def payload(data: Path, rec: Any) -> int:
    manifest = (data / Path(rec.files[0].path).parent / "manifest.json").stat().st_size
    return sum(f.size for f in rec.files) + manifest


def test_a_plain_read_timeout_stalls_on_this_link(proxy: FaultProxy, bucket: str, tmp_path: Path) -> None:
    """The failure from the field, reproduced: the body sits in socket buffers, the read timeout fires."""
    proxy.link.rate_bps = RATE
    client = boto3.client(
        "s3",
        endpoint_url=proxy.url,
        region_name=REGION,
        config=botocore.config.Config(read_timeout=1, retries={"total_max_attempts": 1}),
        **ADMIN,
    )
    up = client.create_multipart_upload(Bucket=bucket, Key="k")
    with pytest.raises(botocore.exceptions.ReadTimeoutError):
        client.upload_part(
            Bucket=bucket, Key="k", UploadId=up["UploadId"], PartNumber=1, Body=os.urandom(MIN_PART)
        )


def test_parts_slower_than_the_timeout_arrive_without_resending(
    tmp_path: Path, proxy: FaultProxy, bucket: str, s3_admin: Any
) -> None:
    data = tmp_path / "data"
    cfg = make_config(data, proxy.url, bucket, timeout_s=1, part_size_mb=5, multipart_threshold_mb=5)
    proxy.link.rate_bps, proxy.link.latency_s = RATE, 0.025
    rec = publish(data, time.time() - 600, os.urandom(CLIP))
    svc = UploadService(cfg, SystemClock(), FAST)
    with running(svc):
        wait_until(lambda: arrived(s3_admin, bucket, cfg, rec), 60, "the three-part clip")
    check_clip(s3_admin, bucket, cfg, rec, data)
    resent = proxy.link.bytes_up - payload(data, rec)
    assert resent < 64 * 1024, f"re-sent {resent} bytes"  # HTTP headers only
    conn = connect(db_path(data))  # the link was measured and kept for the next start
    row = conn.execute("SELECT value FROM upload_meta WHERE name = 'link_rate_bytes_s'").fetchone()
    assert 0.3 * RATE / 8 < float(row["value"]) < 1.2 * RATE / 8


def test_each_cut_costs_at_most_the_part_in_flight(
    tmp_path: Path, proxy: FaultProxy, bucket: str, s3_admin: Any
) -> None:
    """A reset in the middle of part 2, then the link down for a while in the middle of part 3."""
    data = tmp_path / "data"
    cfg = make_config(data, proxy.url, bucket, timeout_s=1, part_size_mb=5, multipart_threshold_mb=5)
    proxy.link.rate_bps, proxy.link.latency_s = RATE, 0.025
    rec = publish(data, time.time() - 600, os.urandom(3 * MIN_PART))
    svc = UploadService(cfg, SystemClock(), FAST)
    with running(svc):
        wait_until(lambda: parts_in(data) >= 1, 60, "part 1 recorded as sent")
        proxy.reset_after(MIN_PART // 2)  # cut 1: connections reset half way through part 2
        wait_until(lambda: proxy.link.resets >= 1, 30, "the first cut")
        wait_until(lambda: parts_in(data) >= 2, 60, "part 2 recorded after the cut")
        up_at_part2 = proxy.link.bytes_up
        wait_until(lambda: proxy.link.bytes_up > up_at_part2 + MIN_PART // 2, 30, "half of part 3")
        proxy.cut()  # cut 2: the link goes down and stays down until an attempt has failed on it
        wait_until(lambda: proxy.link.refused >= 1, 30, "an attempt refused while the link is down")
        proxy.restore()
        wait_until(lambda: arrived(s3_admin, bucket, cfg, rec), 60, "the clip after two cuts")
    check_clip(s3_admin, bucket, cfg, rec, data)
    resent = proxy.link.bytes_up - payload(data, rec)
    assert 0 < resent <= 2 * (MIN_PART + 64 * 1024), f"re-sent {resent} bytes over two cuts"


def test_a_link_that_stops_moving_mid_part_is_noticed_and_the_part_retried(
    tmp_path: Path, proxy: FaultProxy, bucket: str, s3_admin: Any
) -> None:
    """No reset, no error: the bytes just stop. The watch aborts the request; nothing restarts from 0."""
    data = tmp_path / "data"
    cfg = make_config(data, proxy.url, bucket, timeout_s=1, part_size_mb=5, multipart_threshold_mb=5)
    proxy.link.rate_bps, proxy.link.latency_s = RATE, 0.025
    rec = publish(data, time.time() - 600, os.urandom(CLIP))
    svc = UploadService(cfg, SystemClock(), FAST)
    with running(svc):
        wait_until(lambda: parts_in(data) >= 1, 60, "part 1 recorded as sent")
        start = proxy.link.bytes_up
        wait_until(lambda: proxy.link.bytes_up > start + MIN_PART // 2, 30, "half of part 2")
        proxy.link.stalled = True
        state = StateStore(connect(db_path(data)), SystemClock())
        wait_until(
            lambda: (s := state.read("upload")) and "stalled" in (s.state["last_error"] or ""),
            60,
            "the stall to be noticed",
        )
        assert parts_in(data) == 1  # part 1 is kept
        proxy.restore()
        wait_until(lambda: arrived(s3_admin, bucket, cfg, rec), 60, "the clip after the stall")
    check_clip(s3_admin, bucket, cfg, rec, data)
    resent = proxy.link.bytes_up - payload(data, rec)
    assert resent <= MIN_PART + 64 * 1024, f"re-sent {resent} bytes"


def test_part_size_follows_the_link_and_clip() -> None:
    max_part = 8 * MIB
    assert choose_part_size(12_600_000, None, max_part) == MIN_PART  # unmeasured: small parts
    assert choose_part_size(12_600_000, 256e3 / 8, max_part) == MIN_PART  # 256 kbit/s: 3 parts
    assert choose_part_size(12_600_000, 512e3 / 8, max_part) == MIN_PART
    assert choose_part_size(40_000_000, 50e6 / 8, max_part) == max_part  # fast link: configured size
    assert choose_part_size(10_000 * 6 * MIB, 256e3 / 8, max_part) >= 6 * MIB  # S3's 10000 parts


def test_bytes_in_flight_get_their_time_before_a_stall_is_called() -> None:
    rate = LinkRate(100_000.0)  # 800 kbit/s measured
    t = Transfer(1_000_000, 2.0, rate.safe(), now=0.0, key="k")
    assert t.check(5.0) is None  # no socket yet (connecting): nothing to judge or abort
    a, b = socket.socketpair()
    with a, b:
        t.sock = a
        t.on_sent(1_000_000, 5.0)  # all handed over at once (buffers on the way took it)
        assert t.check(5.5) is None
        assert t.check(15.0) is None  # 1 MB at 70 kB/s takes ~14 s: not stalled yet
        assert t.check(21.0) is None
        assert t.check(22.0) is not None  # due + stall time passed with nothing moving
    assert rate.observe(1_000_000, 10.0) == pytest.approx(100_000)
    assert rate.observe(100_000, 10.0) == pytest.approx(100_000)  # small bodies measure latency: ignored


def test_the_wait_for_100_continue_is_not_a_stall() -> None:
    t = Transfer(1_000_000, 1.0, 16_000.0, now=0.0, key="k")
    a, b = socket.socketpair()
    with a, b:
        t.sock = a
        assert t.check(0.1) is None  # registered: the clock starts
        assert t.check(1.9) is None  # headers out, waiting up to 1 s for "100 Continue", plus the stall time
        assert t.check(2.2) is not None


def clip_upload_id(data: Path) -> str | None:
    conn = connect(db_path(data))
    try:
        row = conn.execute("SELECT upload_id FROM upload_jobs WHERE kind = 'clip'").fetchone()
        return row["upload_id"] if row else None
    finally:
        conn.close()


def test_a_clip_is_readied_while_its_snapshot_crosses_the_link(
    tmp_path: Path, proxy: FaultProxy, bucket: str, s3_admin: Any
) -> None:
    """The snapshot goes first; meanwhile the bulk lane checks the clip and creates its upload, so the
    clip's first part follows the snapshot without a round trip. Nothing is sent twice."""
    data = tmp_path / "data"
    cfg = make_config(data, proxy.url, bucket, part_size_mb=5, multipart_threshold_mb=5)
    proxy.link.rate_bps, proxy.link.latency_s = 4e6, 0.025  # the 4 MB snapshot takes 8 s
    rec = publish(data, time.time() - 600, os.urandom(CLIP), snapshot=os.urandom(4_000_000))
    svc = UploadService(cfg, SystemClock(), FAST)
    with running(svc):
        wait_until(lambda: clip_upload_id(data) is not None, 30, "the clip's upload created ahead")
        snapshot = object_prefix(cfg, rec) + "snapshot.jpg"
        assert snapshot not in objects(s3_admin, bucket), "the clip was readied only after its snapshot"
        assert parts_in(data) == 0  # readied, not sent: the snapshot still crosses the link first
        proxy.link.rate_bps = 0
        wait_until(lambda: arrived(s3_admin, bucket, cfg, rec), 60, "the clip")
    check_clip(s3_admin, bucket, cfg, rec, data)
    resent = proxy.link.bytes_up - payload(data, rec)
    assert resent < 64 * 1024, f"re-sent {resent} bytes"  # HTTP headers only
    assert not s3_admin.list_multipart_uploads(Bucket=bucket).get("Uploads"), "an upload left behind"
