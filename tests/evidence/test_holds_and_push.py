"""Delivery to a police store (a second S3 server) verified by reading it back, and evidential holds:
S3 Object Lock legal holds refuse deleting a held version, the unit keeps the held range through its
retention pass (hold_range through the agent's own instruction parser and upload service), release is
recorded and lets both go.
"""

from __future__ import annotations

import base64
import hashlib
import os
import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from botocore.exceptions import ClientError
from sqlalchemy import select

from agent.clock import ManualClock
from agent.db import connect, db_path
from agent.recording.retention import DiskUsage, Retention
from agent.recording.segments import SegmentIndex
from agent.status.instructions import HoldRange, ReleaseHold, parse_instructions
from agent.upload.worker import UploadService
from control_room import cli, instructions
from control_room.db import get_engine, session_scope
from control_room.evidence.models import Delivery, EvidenceHold, RegisterEntry
from control_room.models import Instruction, Unit
from tests.agent.recording_support import unit_config
from tests.control_room.web_fixtures import csrf_from
from tests.evidence.conftest import REGION, T0, UNIT, s3
from tests.evidence.flow import approved_and_packaged


@pytest.fixture(scope="session")
def police_s3() -> Iterator[str]:
    """A second, separate S3 server standing in for the force's own store."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture
def packaged(app, factory, moto, bucket, segments, unit_key):
    return approved_and_packaged(
        app, factory, moto, bucket, segments, unit_key, T0 + timedelta(seconds=1), T0 + timedelta(seconds=5)
    )


def secret_file(tmp_path: Path, mode: int = 0o600) -> Path:
    path = tmp_path / "police.secret"
    path.write_text("testing\n")
    path.chmod(mode)
    return path


def add_store(settings, police_s3: str, secret: Path, bucket: str) -> int:
    return cli.main(
        [
            "--database-url",
            settings.database_url,
            "add-police-store",
            "herts-police",
            "--force",
            "Hertfordshire Constabulary",
            "--bucket",
            bucket,
            "--access-key-id",
            "testing",
            "--secret-file",
            str(secret),
            "--endpoint-url",
            police_s3,
            "--prefix",
            "cctv/incoming",
            "--council",
            "herts",
        ]
    )


def test_push_to_the_police_store_arrives_with_matching_sha256(
    app, settings, packaged, police_s3, tmp_path, capsys
) -> None:
    admin, rid, pkg = packaged
    name = f"herts-evidence-{uuid.uuid4().hex[:8]}"
    s3(police_s3).create_bucket(Bucket=name, CreateBucketConfiguration={"LocationConstraint": REGION})
    assert add_store(settings, police_s3, secret_file(tmp_path, 0o644), name) == 2  # world-readable secret
    assert "readable by others" in capsys.readouterr().err
    assert add_store(settings, police_s3, secret_file(tmp_path), name) == 0
    page = admin.client.get(f"/evidence/{rid}").get_data(as_text=True)
    assert "herts-police" in page
    store_id = int(page.split('<option value="', 1)[1].split('"', 1)[0])
    assert admin.post(f"/evidence/{rid}/packages/{pkg.id}/push", store_id=store_id).status_code == 302

    head = s3(police_s3).head_object(
        Bucket=name, Key=f"cctv/incoming/{pkg.exhibit_ref}.zip", ChecksumMode="ENABLED"
    )
    assert base64.b64decode(head["ChecksumSHA256"]).hex() == pkg.sha256
    body = s3(police_s3).get_object(Bucket=name, Key=f"cctv/incoming/{pkg.exhibit_ref}.zip")
    assert hashlib.sha256(body["Body"].read()).hexdigest() == pkg.sha256
    with session_scope(get_engine(app)) as s:
        delivery = s.scalars(select(Delivery)).one()
        assert delivery.state == "verified" and delivery.objects[0]["sha256"] == pkg.sha256
        pushed = s.scalars(select(RegisterEntry).where(RegisterEntry.action == "pushed")).one()
        assert pushed.outcome == "ok" and pushed.recipient_org == "Hertfordshire Constabulary"
    register = admin.client.get("/evidence/register").get_data(as_text=True)
    assert "pushed" in register and "herts-police" in register


def test_a_push_the_store_refuses_is_recorded_as_failed(app, settings, packaged, police_s3, tmp_path) -> None:
    admin, rid, pkg = packaged
    assert (
        add_store(settings, police_s3, secret_file(tmp_path), f"missing-{uuid.uuid4().hex[:8]}") == 0
    )  # no such bucket
    page = admin.client.get(f"/evidence/{rid}").get_data(as_text=True)
    store_id = int(page.split('<option value="', 1)[1].split('"', 1)[0])
    admin.post(f"/evidence/{rid}/packages/{pkg.id}/push", store_id=store_id)
    with session_scope(get_engine(app)) as s:
        delivery = s.scalars(select(Delivery)).one()
        assert delivery.state == "failed" and "NoSuchBucket" in delivery.error
        assert (
            s.scalars(select(RegisterEntry.outcome).where(RegisterEntry.action == "pushed")).one()
            == "refused"
        )


def test_hold_refuses_deletion_keeps_the_units_range_and_release_is_recorded(
    app, packaged, moto, bucket, tmp_path
) -> None:
    admin, rid, pkg = packaged
    review = (T0 + timedelta(days=90)).date().isoformat()
    assert admin.post(f"/evidence/{rid}/hold", reason="trial pending", review_date=review).status_code == 302
    client = s3(moto)
    held = [o for o in pkg.objects if o["key"].endswith(".mp4")]
    for o in pkg.objects:
        answer = client.get_object_legal_hold(Bucket=bucket, Key=o["key"], VersionId=o["version_id"])
        assert answer["LegalHold"]["Status"] == "ON"
    with pytest.raises(ClientError) as refused:
        client.delete_object(Bucket=bucket, Key=held[0]["key"], VersionId=held[0]["version_id"])
    assert refused.value.response["Error"]["Code"] == "AccessDenied"

    # the unit's side: the hold_range instruction as the heartbeat response carries it
    with session_scope(get_engine(app)) as s:
        unit = s.scalars(select(Unit).where(Unit.unit_id == UNIT)).one()
        wire = instructions.deliver(s, unit)
    holds = [i for i in parse_instructions({"instructions": wire}) if isinstance(i, HoldRange)]
    assert len(holds) == 1 and holds[0].start == T0 + timedelta(seconds=1)
    data = tmp_path / "unit"
    cfg = unit_config(data, upload={"bucket": "unit-bucket"}, retention={"max_age_days": 31})
    clock = ManualClock(wall=T0.timestamp() + 40 * 86400)  # the range is now past retention
    index = SegmentIndex(connect(db_path(data)))
    segs = []
    for i in range(4):  # 2 s segments from T0: [0,2) [2,4) [4,6) held by [1,5]; [6,8) is not
        path = data / "recordings" / f"{UNIT}_{i}.mp4"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(os.urandom(1000))
        segs.append(index.add(path, T0.timestamp() + 2 * i, T0.timestamp() + 2 * i + 2, 20, 1000, "x", True))
    service = UploadService(cfg, clock)
    assert service.on_instruction(holds[0]) is True
    assert service.on_instruction(holds[0]) is True  # delivered again: still one hold
    disk = lambda _p: DiskUsage(10**12, 0, 10**12)  # noqa: E731 (plenty of space: age rule only)
    conn = connect(db_path(data))
    Retention(cfg, clock, SegmentIndex(conn), conn, disk_usage=disk).run_once()
    assert [s.path.exists() for s in segs] == [True, True, True, False]

    admin.csrf = csrf_from(admin.client.get(f"/evidence/{rid}").get_data(as_text=True))
    with session_scope(get_engine(app)) as s:
        hid = s.scalars(select(EvidenceHold)).one().id
    assert admin.post(f"/evidence/holds/{hid}/release", reason="").status_code == 302  # a reason is needed
    with session_scope(get_engine(app)) as s:
        assert s.get(EvidenceHold, hid).released_at is None
    assert admin.post(f"/evidence/holds/{hid}/release", reason="case closed at court").status_code == 302
    for o in pkg.objects:
        answer = client.get_object_legal_hold(Bucket=bucket, Key=o["key"], VersionId=o["version_id"])
        assert answer["LegalHold"]["Status"] == "OFF"
    client.delete_object(Bucket=bucket, Key=held[0]["key"], VersionId=held[0]["version_id"])
    with session_scope(get_engine(app)) as s:
        row = s.get(EvidenceHold, hid)
        assert row.released_at is not None and row.release_reason == "case closed at court"
        actions = [r.action for r in s.scalars(select(RegisterEntry).order_by(RegisterEntry.id))]
        assert "held" in actions and "hold_released" in actions
        unit = s.scalars(select(Unit).where(Unit.unit_id == UNIT)).one()
        wire = instructions.deliver(s, unit)
        kinds = [r.type.value for r in s.scalars(select(Instruction).order_by(Instruction.id))]
        assert kinds[-2:] == ["hold_range", "release_hold"]
    releases = [i for i in parse_instructions({"instructions": wire}) if isinstance(i, ReleaseHold)]
    assert service.on_instruction(releases[0]) is True
    Retention(cfg, clock, SegmentIndex(conn), conn, disk_usage=disk).run_once()
    assert not any(s.path.exists() for s in segs)
