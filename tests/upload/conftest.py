"""Fixtures for the upload tests: a real S3 server over HTTP (moto server mode), buckets, unit configs,
events published to the outbox exactly as events.py does, and the fault-injecting proxy.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
import pytest
import requests
from moto.server import ThreadedMotoServer

from agent.clock import SystemClock, iso_utc
from agent.config import Config, parse_config
from agent.events.outbox import EventFile, EventRecord, publish_event
from agent.fsutil import atomic_write_bytes
from agent.upload.worker import RetryPolicy, UploadService
from provisioning.iam import unit_policy
from tests.servers import free_port, fresh_moto, worker_moto  # noqa: F401 (free_port re-exported; a fixture)
from tests.upload.faultproxy import FaultProxy
from tests.waiting import wait_until  # noqa: F401 (re-exported for the upload tests)

logging.getLogger("werkzeug").setLevel(logging.WARNING)

UNIT = "herts-mcu-001"
REGION = "eu-west-2"
ADMIN = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}
IAM_BUCKET = "cctv-footage"
SHARED_DATA = Path(__file__).resolve().parents[2] / ".." / "shared" / "data"


@pytest.fixture(scope="session")
def moto_url() -> Iterator[str]:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


def admin_client(url: str) -> Any:
    return boto3.client("s3", endpoint_url=url, region_name=REGION, **ADMIN)


@pytest.fixture
def bucket(moto_url: str) -> str:
    name = f"cctv-{uuid.uuid4().hex[:12]}"
    admin_client(moto_url).create_bucket(
        Bucket=name, CreateBucketConfiguration={"LocationConstraint": REGION}
    )
    return name


@pytest.fixture
def s3_admin(moto_url: str) -> Any:
    return admin_client(moto_url)


def make_config(
    data_dir: Path,
    endpoint: str,
    bucket: str,
    unit: str = UNIT,
    creds: dict[str, str] | None = None,
    **upload: Any,
) -> Config:
    creds = creds or ADMIN
    status = upload.pop("status", None)
    up = {
        "endpoint_url": endpoint,
        "region": REGION,
        "bucket": bucket,
        "access_key_id": creds["aws_access_key_id"],
        "secret_access_key": creds["aws_secret_access_key"],
        "multipart_threshold_mb": 8,
        "part_size_mb": 5,
        "timeout_s": 5,
        "monthly_budget_mb": 0,
    }
    up.update(upload)
    data = {"unit": {"id": unit, "site": "High St north", "data_dir": str(data_dir)}, "upload": up}
    if status:
        data["status"] = status
    return parse_config(data, env={})


def event_id_for(unit: str, ts: float) -> str:
    return f"{unit}-{datetime.fromtimestamp(ts, UTC):%Y%m%dT%H%M%S}.{int(ts * 1000) % 1000:03d}Z"


def publish(
    data_dir: Path,
    ts: float,
    clip: bytes,
    snapshot: bytes | None = None,
    unit: str = UNIT,
    publish_record: bool = True,
) -> EventRecord:
    """Write an event's files under events/<id>/ and publish its outbox record, as events.py does."""
    eid = event_id_for(unit, ts)
    snapshot = snapshot if snapshot is not None else os.urandom(20_000)
    files = []
    for role, name, data, ctype in (
        ("snapshot", "snapshot.jpg", snapshot, "image/jpeg"),
        ("clip", "clip.mp4", clip, "video/mp4"),
    ):
        rel = f"events/{eid}/{name}"
        atomic_write_bytes(data_dir / rel, data)
        files.append(EventFile(role, rel, len(data), hashlib.sha256(data).hexdigest(), ctype))
    rec = EventRecord(
        event_id=eid,
        unit_id=unit,
        site="High St north",
        start=iso_utc(ts),
        end=iso_utc(ts + 4),
        clip_start=iso_utc(ts - 5),
        clip_end=iso_utc(ts + 14),
        peak_score=0.3,
        peak_time=iso_utc(ts + 1),
        boxes=[[0.1, 0.2, 0.05, 0.1]],
        clock_synced=True,
        software_version="0.1.0",
        created_at=iso_utc(ts + 15),
        files=files,
    )
    if publish_record:
        publish_event(data_dir, rec)
    return rec


@pytest.fixture
def publish_events(tmp_path: Path) -> Callable[..., list[EventRecord]]:
    base = time.time() - 3600

    def _publish(
        n: int, clip_size: int = 50_000, data_dir: Path | None = None, offset: float = 0, **kw: Any
    ) -> list[EventRecord]:
        return [
            publish(data_dir or tmp_path / "data", base + offset + i * 30, os.urandom(clip_size), **kw)
            for i in range(n)
        ]

    return _publish


@pytest.fixture
def proxy(moto_url: str) -> Iterator[FaultProxy]:
    host, port = moto_url.removeprefix("http://").split(":")
    p = FaultProxy(host, int(port)).start()
    yield p
    p.stop()


def objects(client: Any, bucket: str, prefix: str = "") -> dict[str, int]:
    out: dict[str, int] = {}
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        out.update({o["Key"]: o["Size"] for o in page.get("Contents", [])})
    return out


@pytest.fixture
def iam_moto(worker_moto: str) -> str:  # noqa: F811
    """A moto process of this worker's alone, reset to a fresh one's state, that enforces IAM once
    `enforced` switches auth on after set-up."""
    return fresh_moto(worker_moto)


def iam_user(iam: Any, name: str, policy: dict[str, Any]) -> dict[str, str]:
    iam.create_user(UserName=name)
    iam.put_user_policy(UserName=name, PolicyName=f"{name}-policy", PolicyDocument=json.dumps(policy))
    key = iam.create_access_key(UserName=name)["AccessKey"]
    return {"aws_access_key_id": key["AccessKeyId"], "aws_secret_access_key": key["SecretAccessKey"]}


@pytest.fixture
def enforced(iam_moto: str) -> tuple[str, dict[str, str], dict[str, str]]:
    """Bucket, an auditor with full access and the unit's user; then IAM enforcement is switched on."""
    boto3.client("s3", endpoint_url=iam_moto, region_name=REGION, **ADMIN).create_bucket(
        Bucket=IAM_BUCKET, CreateBucketConfiguration={"LocationConstraint": REGION}
    )
    iam = boto3.client("iam", endpoint_url=iam_moto, region_name="us-east-1", **ADMIN)
    admin = iam_user(
        iam,
        "auditor",
        {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}]},
    )
    unit = iam_user(iam, UNIT, unit_policy(IAM_BUCKET, "units", UNIT))
    requests.post(f"{iam_moto}/moto-api/reset-auth", data=b"0", timeout=5).raise_for_status()
    return iam_moto, admin, unit


FAST = RetryPolicy(
    transient_initial_s=0.1, transient_max_s=0.5, refused_initial_s=0.5, poll_s=0.2, status_s=0.2
)


@contextmanager
def running(svc: UploadService, join_s: float = 10.0) -> Iterator[UploadService]:
    """The service started for the block; stopped after it (failed or not), every thread ended."""
    svc.start()
    try:
        yield svc
    finally:
        svc.stop()
        assert svc.join(join_s), "upload service did not stop"


@pytest.fixture
def service() -> Iterator[Callable[[Config], UploadService]]:
    """Start UploadService instances (fast retry policy); all are stopped and joined at the end."""
    started: list[UploadService] = []

    def _start(cfg: Config) -> UploadService:
        svc = UploadService(cfg, SystemClock(), FAST)
        svc.start()
        started.append(svc)
        return svc

    yield _start
    for svc in started:
        svc.stop()
    for svc in started:
        assert svc.join(10), "upload service did not stop"
