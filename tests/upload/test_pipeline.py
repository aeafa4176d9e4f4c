"""The upload pipeline end to end against a real S3 server: layout, order, integrity, manifests, status."""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path
from typing import Any

import av
import cv2
import pytest

from agent.clock import SystemClock
from agent.db import connect, db_path
from agent.state import StateStore
from agent.upload.intake import object_prefix
from agent.upload.manifest import verify_chain
from agent.upload.queue import UploadQueue
from agent.upload.worker import UploadService
from tests.upload.conftest import FAST, SHARED_DATA, make_config, objects, publish, running, wait_until


def test_events_arrive_intact_with_layout_metadata_and_chained_manifests(
    tmp_path: Path, moto_url: str, bucket: str, s3_admin: Any, publish_events: Any
) -> None:
    data = tmp_path / "data"
    cfg = make_config(data, moto_url, bucket)
    before = publish_events(2, clip_size=9 * 1024 * 1024 + 123)  # published while the agent was down
    with running(UploadService(cfg, SystemClock(), FAST)):
        after = publish_events(2, clip_size=300_000, offset=10_000)  # picked up by watchdog
        records = before + after
        want = {
            object_prefix(cfg, r) + n for r in records for n in ("clip.mp4", "snapshot.jpg", "manifest.json")
        }
        wait_until(lambda: want <= set(objects(s3_admin, bucket)), 30, "all objects in the bucket")
    for r in records:
        prefix = object_prefix(cfg, r)
        assert prefix.startswith(
            f"units/herts-mcu-001/{r.start[:4]}/{r.start[5:7]}/{r.start[8:10]}/{r.event_id}/"
        )
        for f in r.files:
            obj = s3_admin.get_object(Bucket=bucket, Key=prefix + Path(f.path).name)
            body = obj["Body"].read()
            assert body == (data / f.path).read_bytes()
            assert hashlib.sha256(body).hexdigest() == f.sha256 == obj["Metadata"]["sha256"]
            assert obj["Metadata"]["event-id"] == r.event_id
    manifests = [
        s3_admin.get_object(Bucket=bucket, Key=object_prefix(cfg, r) + "manifest.json")["Body"].read()
        for r in records
    ]
    docs = verify_chain(manifests)
    assert [d["event_id"] for d in docs] == [r.event_id for r in records]
    assert {f["name"]: f["sha256"] for f in docs[0]["files"]}["clip.mp4"] == records[0].file("clip").sha256
    conn = connect(db_path(data))
    up = StateStore(conn, SystemClock()).read("upload")
    assert up is not None
    assert up.state["pending"] == 0 and up.state["failed"] == 0 and up.state["last_success_at"]
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


def test_snapshot_and_manifest_go_before_any_clip(
    tmp_path: Path, moto_url: str, bucket: str, publish_events: Any
) -> None:
    data = tmp_path / "data"
    cfg = make_config(data, moto_url, bucket)
    publish_events(3, clip_size=200_000)
    with running(UploadService(cfg, SystemClock(), FAST)):
        conn = UploadQueue.open(connect(db_path(data))).conn
        wait_until(
            lambda: (
                conn.execute("SELECT COUNT(*) FROM upload_jobs WHERE state != 'done'").fetchone()[0] == 0
                and conn.execute("SELECT COUNT(*) FROM upload_jobs").fetchone()[0] == 9
            ),
            20,
            "queue drained",
        )
    rows = conn.execute("SELECT event_id, role, done_at FROM upload_jobs").fetchall()
    for eid in {r[0] for r in rows}:
        done = {r[1]: r[2] for r in rows if r[0] == eid}
        assert done["snapshot"] <= done["clip"] and done["manifest"] <= done["clip"]
    assert json.loads(json.dumps([dict(r) for r in rows]))


def test_real_footage_arrives_bit_for_bit(tmp_path: Path, moto_url: str, bucket: str, s3_admin: Any) -> None:
    """A real H.264 MP4 (CDnet highway) and a JPEG of one of its frames, uploaded multipart and verified."""
    clip_path = SHARED_DATA / "cdnet_highway" / "highway_input_h264.mp4"
    if not clip_path.exists():
        pytest.skip(f"real footage not found at {clip_path} (../shared/data)")
    with av.open(str(clip_path)) as container:
        frame = next(container.decode(video=0)).to_ndarray(format="bgr24")
    ok, jpeg = cv2.imencode(".jpg", frame)
    assert ok
    data = tmp_path / "data"
    cfg = make_config(data, moto_url, bucket, multipart_threshold_mb=5, part_size_mb=5)
    clip = clip_path.read_bytes()
    with running(UploadService(cfg, SystemClock(), FAST)):
        rec = publish(data, time.time() - 120, clip, snapshot=jpeg.tobytes())
        key = object_prefix(cfg, rec) + "clip.mp4"
        wait_until(lambda: key in objects(s3_admin, bucket), 30, "the real clip")
    got = s3_admin.get_object(Bucket=bucket, Key=key)
    assert got["Body"].read() == clip and got["Metadata"]["sha256"] == hashlib.sha256(clip).hexdigest()
    snap = s3_admin.get_object(Bucket=bucket, Key=object_prefix(cfg, rec) + "snapshot.jpg")
    assert snap["ContentType"] == "image/jpeg" and snap["Body"].read() == jpeg.tobytes()
