"""`run` hands its events to the upload pipeline: every clip and snapshot the agent records reaches a
real S3 server (moto, over HTTP) byte for byte."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Iterator

import boto3
import pytest
from moto.server import ThreadedMotoServer

from agent.clock import SystemClock
from agent.config import parse_config
from agent.runner import run
from agent.upload.worker import UploadService
from tests.agent.footage import sample_start
from tests.waiting import wait_until

REGION = "eu-west-2"
KEYS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}


@pytest.fixture(scope="module")
def s3() -> Iterator[tuple[str, object]]:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    url = f"http://{host}:{port}"
    yield url, boto3.client("s3", endpoint_url=url, region_name=REGION, **KEYS)
    server.stop()


def test_recorded_events_arrive_in_the_bucket(tmp_path, tmp_path_factory, s3) -> None:
    url, client = s3
    bucket = f"cctv-{uuid.uuid4().hex[:12]}"
    client.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": REGION})
    clip = sample_start(tmp_path_factory)  # 15 s: people walking from the first seconds
    cfg = parse_config({
        "unit": {"id": "up-unit", "data_dir": str(tmp_path)},
        "camera": {"source": "file", "device": str(clip), "width": 480, "height": 360,
                   "fps": 10, "pace": "fast"},
        "recording": {"bitrate_kbps": 300},
        "upload": {"endpoint_url": url, "region": REGION, "bucket": bucket, "monthly_budget_mb": 0,
                   "access_key_id": KEYS["aws_access_key_id"],
                   "secret_access_key": KEYS["aws_secret_access_key"], "timeout_s": 5},
        "status": {"enabled": False},
    }, env={})
    result = run(cfg, SystemClock())
    wanted = {f.sha256 for rec in result.events for f in rec.files}
    assert result.events and len(wanted) == 3 * len(result.events)
    service = UploadService(cfg, SystemClock())  # the next start carries on with the durable queue
    service.start()
    found: set[str] = set()
    read: set[str] = set()  # objects are written whole, once: each is downloaded once

    def all_arrived() -> bool:
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket):
            for obj in page.get("Contents", []):
                if obj["Key"] not in read:
                    body = client.get_object(Bucket=bucket, Key=obj["Key"])["Body"].read()
                    found.add(hashlib.sha256(body).hexdigest())
                    read.add(obj["Key"])
        return wanted <= found

    try:
        wait_until(all_arrived, timeout=90, interval=0.5, what="every clip and snapshot in the bucket",
                   detail=lambda: f"{len(wanted - found)} of {len(wanted)} missing")
    finally:
        service.stop()
        service.join(30)
    assert wanted <= found
