"""Least privilege against an S3 server that enforces IAM: a unit's user, limited by
provisioning.iam.unit_policy to its own prefix, uploads and resumes, and can do nothing else.
"""

from __future__ import annotations

import hashlib
import os
import time
from pathlib import Path
from typing import Any

import boto3
import botocore.exceptions

from agent.clock import SystemClock
from agent.upload.intake import object_prefix
from agent.upload.worker import UploadService
from tests.upload.conftest import FAST, REGION, UNIT, make_config, publish, wait_until
from tests.upload.conftest import IAM_BUCKET as BUCKET
from tests.upload.faultproxy import FaultProxy

MIB = 1024 * 1024


def denied(call: Any, **kwargs: Any) -> bool:
    try:
        call(**kwargs)
    except botocore.exceptions.ClientError as err:
        return err.response["ResponseMetadata"]["HTTPStatusCode"] == 403
    return False


def test_unit_user_uploads_and_resumes_within_its_prefix_and_can_do_nothing_else(
    tmp_path: Path, enforced: tuple[str, dict[str, str], dict[str, str]]
) -> None:
    url, admin_creds, unit_creds = enforced
    host, port = url.removeprefix("http://").split(":")
    proxy = FaultProxy(host, int(port)).start()
    data = tmp_path / "data"
    cfg = make_config(data, proxy.url, BUCKET, creds=unit_creds, part_size_mb=5, multipart_threshold_mb=5)
    rec = publish(data, time.time() - 600, os.urandom(16 * MIB))
    proxy.reset_after(8 * MIB)  # mid part 2: the resume needs ListParts under the unit's policy
    svc = UploadService(cfg, SystemClock(), FAST)
    auditor = boto3.client("s3", endpoint_url=url, region_name=REGION, **admin_creds)
    prefix = object_prefix(cfg, rec)
    try:
        svc.start()
        wait_until(
            lambda: (
                {prefix + n for n in ("clip.mp4", "snapshot.jpg", "manifest.json")}
                <= {o["Key"] for o in auditor.list_objects_v2(Bucket=BUCKET).get("Contents", [])}
            ),
            40,
            "uploads",
        )
    finally:
        svc.stop()
        assert svc.join(10)
        proxy.stop()
    assert proxy.link.resets == 1
    for f in rec.files:
        obj = auditor.get_object(Bucket=BUCKET, Key=prefix + Path(f.path).name)
        assert hashlib.sha256(obj["Body"].read()).hexdigest() == f.sha256 == obj["Metadata"]["sha256"]

    unit = boto3.client("s3", endpoint_url=url, region_name=REGION, **unit_creds)
    key = prefix + "clip.mp4"
    assert denied(unit.get_object, Bucket=BUCKET, Key=key)
    assert denied(unit.head_object, Bucket=BUCKET, Key=key)
    assert denied(unit.list_objects_v2, Bucket=BUCKET)
    assert denied(unit.list_objects_v2, Bucket=BUCKET, Prefix=f"units/{UNIT}/")
    assert denied(unit.delete_object, Bucket=BUCKET, Key=key)
    assert denied(unit.put_object, Bucket=BUCKET, Key="units/herts-mcu-002/2026/11/28/x/clip.mp4", Body=b"x")
    assert denied(unit.put_object, Bucket=BUCKET, Key="elsewhere.txt", Body=b"x")
    assert not denied(unit.put_object, Bucket=BUCKET, Key=f"units/{UNIT}/probe.txt", Body=b"x")  # the control
    probe = f"units/{UNIT}/probe.bin"
    upload_id = unit.create_multipart_upload(Bucket=BUCKET, Key=probe)["UploadId"]
    assert not denied(unit.abort_multipart_upload, Bucket=BUCKET, Key=probe, UploadId=upload_id)  # stale ones
    assert denied(unit.list_multipart_uploads, Bucket=BUCKET)
    assert auditor.head_object(Bucket=BUCKET, Key=key)["ContentLength"] == rec.file("clip").size
