"""`cctv-provision unit add/list/stolen/rotate-credentials/retire` against a real S3+IAM server that
enforces IAM (moto server mode), a real migrated control room and a real ansible-vault inventory:
a unit made by `unit add` uploads and resumes under its prefix and can do nothing else; after
`unit stolen` it is refused everywhere and its events since then are flagged; rotation keeps
uploads working across the switch.
"""

from __future__ import annotations

import base64
import hashlib
import os
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import botocore.exceptions
from cryptography.hazmat.primitives import serialization
from sqlalchemy import select
from sqlalchemy.orm import Session

from agent.clock import SystemClock
from agent.upload.intake import object_prefix
from agent.upload.worker import UploadService
from control_room import custody
from control_room import provision as cr
from control_room.db import get_engine
from control_room.models import Event, Unit
from provisioning.inventory import Inventory
from tests.control_room import bodies
from tests.provisioning.conftest import BUCKET, VAULT_PASSWORD, Store, cr_units
from tests.upload.conftest import FAST, make_config, publish, wait_until
from tests.upload.faultproxy import FaultProxy

UNIT = "herts-mcu-007"
OTHER = "herts-mcu-008"
MIB = 1024 * 1024


def creds_of(inventory: Path, unit: str) -> tuple[dict[str, str], str]:
    s = Inventory(inventory, VAULT_PASSWORD).read_secrets(unit)
    return ({"aws_access_key_id": s.s3_access_key_id, "aws_secret_access_key": s.s3_secret_access_key},
            s.status_token)


def denied(call: Any, **kwargs: Any) -> bool:
    try:
        call(**kwargs)
    except botocore.exceptions.ClientError as err:
        return err.response["ResponseMetadata"]["HTTPStatusCode"] in (401, 403)
    return False


def heartbeat(app: Any, unit: str, token: str) -> int:
    return app.test_client().post(f"/api/v1/units/{unit}/heartbeat", json=bodies.heartbeat(unit),
                                  headers={"Authorization": f"Bearer {token}"}).status_code


def upload_one(tmp_path: Path, store: Store, creds: dict[str, str], unit: str, size: int,
               reset_after: int | None = None) -> tuple[str, Any]:
    """The agent's real upload service with the unit's credentials (through a proxy that can cut
    the connection mid-upload); returns the event's object prefix once everything is in the bucket."""
    host, port = store.url.removeprefix("http://").split(":")
    proxy = FaultProxy(host, int(port)).start()
    data = tmp_path / f"data-{unit}-{time.monotonic_ns()}"
    cfg = make_config(data, proxy.url, BUCKET, unit=unit, creds=creds, part_size_mb=5,
                      multipart_threshold_mb=5)
    rec = publish(data, time.time() - 600, os.urandom(size), unit=unit)
    if reset_after:
        proxy.reset_after(reset_after)
    svc = UploadService(cfg, SystemClock(), FAST)
    prefix = object_prefix(cfg, rec)
    auditor = store.s3()
    want = {prefix + n for n in ("clip.mp4", "snapshot.jpg", "manifest.json")}
    try:
        svc.start()
        wait_until(lambda: want <= {o["Key"] for o in auditor.list_objects_v2(
            Bucket=BUCKET, Prefix=prefix).get("Contents", [])}, 60, f"{unit}'s uploads")
    finally:
        svc.stop()
        assert svc.join(10)
        proxy.stop()
    if reset_after:
        assert proxy.link.resets == 1
    for f in rec.files:
        body = auditor.get_object(Bucket=BUCKET, Key=prefix + Path(f.path).name)["Body"].read()
        assert hashlib.sha256(body).hexdigest() == f.sha256
    return prefix, rec


def test_unit_add_makes_a_least_privilege_unit_that_uploads_and_reports(
        cli: Any, store: Store, control_room: Any, inventory: Path, tmp_path: Path) -> None:
    assert cli("bucket", "setup").code == 0
    done = cli("unit", "add", UNIT, "--council", "herts", "--site", "High Street")
    assert done.code == 0, done.err
    assert cli("unit", "add", OTHER, "--council", "herts").code == 0

    # IAM: the unit's own user with the upload-only policy; the control room: unit, token, public key
    assert store.unit_users() == [f"cctv-unit-{UNIT}", f"cctv-unit-{OTHER}"]
    assert cr_units(control_room) == [UNIT, OTHER]
    with Session(get_engine(control_room)) as s:
        unit = s.scalar(select(Unit).where(Unit.unit_id == UNIT))
        key = custody.public_key(s, unit)
        assert key is not None and key.source == "registered" and len(base64.b64decode(key.public_key)) == 32
    # the inventory: secrets only inside the vault, which only the vault password opens
    hv = inventory / "host_vars" / UNIT
    vault = (hv / "vault.yml").read_bytes()
    creds, token = creds_of(inventory, UNIT)
    assert vault.startswith(b"$ANSIBLE_VAULT;1.1;AES256")
    for secret in (creds["aws_secret_access_key"], token, "PRIVATE KEY"):
        assert secret.encode() not in vault and secret not in (hv / "vars.yml").read_text()
        assert secret not in done.out + done.err
    assert (hv / "vault.yml").stat().st_mode & 0o777 == 0o600
    # the private half is in the vault, the control room has the matching public half
    private = serialization.load_pem_private_key(
        Inventory(inventory, VAULT_PASSWORD).read_secrets(UNIT).signing_key_pem.encode(), None)
    raw = private.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    assert base64.b64encode(raw).decode() == key.public_key
    assert "herts-mcu-007" in (inventory / f"{UNIT}.yml").read_text()

    # the unit uploads, resuming after a cut mid-part, under its own prefix
    prefix, _ = upload_one(tmp_path, store, creds, UNIT, 12 * MIB, reset_after=7 * MIB)
    assert prefix.startswith(f"units/{UNIT}/")
    assert heartbeat(control_room, UNIT, token) == 200

    # and can do nothing else
    unit_s3 = store.s3(creds)
    key = prefix + "clip.mp4"
    assert denied(unit_s3.get_object, Bucket=BUCKET, Key=key)
    assert denied(unit_s3.list_objects_v2, Bucket=BUCKET, Prefix=f"units/{UNIT}/")
    assert denied(unit_s3.delete_object, Bucket=BUCKET, Key=key)
    assert denied(unit_s3.put_object, Bucket=BUCKET, Key=f"units/{OTHER}/x/clip.mp4", Body=b"x")
    assert denied(unit_s3.put_object, Bucket=BUCKET, Key="elsewhere.txt", Body=b"x")
    assert denied(unit_s3.list_buckets)
    assert not denied(unit_s3.put_object, Bucket=BUCKET, Key=f"units/{UNIT}/probe.txt", Body=b"x")

    listed = cli("unit", "list")
    assert listed.code == 0
    line = next(x for x in listed.out.splitlines() if x.startswith(UNIT))
    assert "active" in line and "0.0 d" in line and "s ago" in line, listed.out
    other = next(x for x in listed.out.splitlines() if x.startswith(OTHER))
    assert other.endswith("never"), listed.out


def test_stolen_unit_is_refused_everywhere_and_its_later_events_are_flagged(
        cli: Any, store: Store, control_room: Any, inventory: Path, tmp_path: Path) -> None:
    assert cli("bucket", "setup").code == 0
    assert cli("unit", "add", UNIT, "--council", "herts").code == 0
    creds, token = creds_of(inventory, UNIT)
    client = control_room.test_client()
    auth = {"Authorization": f"Bearer {token}"}
    before = bodies.event(UNIT, stamp="20261128T100000.000Z", start="2026-11-28T10:00:00.000Z",
                          end="2026-11-28T10:00:15.000Z")
    after = bodies.event(UNIT, stamp="20261128T140000.000Z", start="2026-11-28T14:00:00.000Z",
                         end="2026-11-28T14:00:15.000Z")
    clock = control_room.extensions["cctv_clock"]  # the control room's receiving time
    for note, received in ((before, "2026-11-28T10:00:30+00:00"), (after, "2026-11-28T14:00:30+00:00")):
        clock.set_wall(datetime.fromisoformat(received).timestamp())
        assert client.post(f"/api/v1/units/{UNIT}/events", json=note, headers=auth).status_code == 200
    upload_one(tmp_path, store, creds, UNIT, 100_000)

    stolen = cli("unit", "stolen", UNIT, "--since", "2026-11-28T12:00:00Z")
    assert stolen.code == 0, stolen.err
    assert "1 storage key(s) deleted" in stolen.out and "1 event(s)" in stolen.out, stolen.out

    # heartbeats and events refused, storage refused, and no way back in
    assert heartbeat(control_room, UNIT, token) == 401
    assert client.post(f"/api/v1/units/{UNIT}/events", json=bodies.event(UNIT, stamp="20261128T150000.000Z"),
                       headers=auth).status_code == 401
    assert denied(store.s3(creds).put_object, Bucket=BUCKET, Key=f"units/{UNIT}/after-theft.txt", Body=b"x")
    with Session(get_engine(control_room)) as s:
        flags = {e.event_id: custody.custody_flag(s, e) for e in s.scalars(select(Event))}
        assert flags[before["event_id"]] is None
        assert flags[after["event_id"]] is not None and "stolen" in flags[after["event_id"]].reason
        try:
            cr.rotate_token(s, UNIT)
            raise AssertionError("a stolen unit was given a new token")
        except custody.StolenUnit:
            pass
    assert cli("unit", "rotate-credentials", UNIT).code == 2
    assert "stolen" in next(x for x in cli("unit", "list").out.splitlines() if x.startswith(UNIT))


def test_rotation_keeps_uploads_working_across_the_switch(
        cli: Any, store: Store, control_room: Any, inventory: Path, tmp_path: Path) -> None:
    assert cli("bucket", "setup").code == 0
    assert cli("unit", "add", UNIT, "--council", "herts").code == 0
    old, token = creds_of(inventory, UNIT)
    upload_one(tmp_path, store, old, UNIT, 100_000)

    started = cli("unit", "rotate-credentials", UNIT)
    assert started.code == 0, started.err
    new, token_after = creds_of(inventory, UNIT)
    assert new["aws_access_key_id"] != old["aws_access_key_id"] and token_after == token
    # until the next Ansible run the unit still has the old key: it keeps working
    upload_one(tmp_path, store, old, UNIT, 100_000)
    early = cli("unit", "rotate-credentials", UNIT, "--finish")
    assert early.code == 2 and "has not used its new key" in early.err, early.err
    again = cli("unit", "rotate-credentials", UNIT)
    assert again.code == 2 and "already in progress" in again.err
    # Ansible pushes the new key; the unit uploads with it (a resumed multipart upload)
    upload_one(tmp_path, store, new, UNIT, 11 * MIB, reset_after=6 * MIB)
    finished = cli("unit", "rotate-credentials", UNIT, "--finish")
    assert finished.code == 0, finished.err
    assert denied(store.s3(old).put_object, Bucket=BUCKET, Key=f"units/{UNIT}/old.txt", Body=b"x")
    assert not denied(store.s3(new).put_object, Bucket=BUCKET, Key=f"units/{UNIT}/new.txt", Body=b"x")
    assert [k["AccessKeyId"] for k in store.iam().list_access_keys(
        UserName=f"cctv-unit-{UNIT}")["AccessKeyMetadata"]] == [new["aws_access_key_id"]]
    assert heartbeat(control_room, UNIT, token) == 200


def test_retire_removes_credentials_and_inventory_but_keeps_the_record(
        cli: Any, store: Store, control_room: Any, inventory: Path) -> None:
    assert cli("unit", "add", UNIT, "--council", "herts").code == 0
    creds, token = creds_of(inventory, UNIT)
    done = cli("unit", "retire", UNIT)
    assert done.code == 0, done.err
    assert store.unit_users() == [] and not (inventory / "host_vars" / UNIT).exists()
    assert heartbeat(control_room, UNIT, token) == 401
    assert cr_units(control_room) == [UNIT]  # its events and public key stay for old evidence
    assert "retired" in next(x for x in cli("unit", "list").out.splitlines() if x.startswith(UNIT))
