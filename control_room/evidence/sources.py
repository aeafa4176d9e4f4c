"""Where a request's footage is in the central bucket: one unit "record" (an event, or a range the unit
uploaded for an upload_range instruction) = a signed manifest.json plus the files it names.

Used for the request's progress and by the package builder; keys follow agent/upload/intake.py.
"""

from __future__ import annotations

import hashlib
import posixpath
from dataclasses import dataclass
from datetime import datetime
from typing import Any, BinaryIO

from sqlalchemy import select
from sqlalchemy.orm import Session

from control_room.errors import ControlRoomError
from control_room.evidence.models import DisclosureRequest, UnitSigningKey
from control_room.evidence.signing import SignatureError, verify_unit_manifest
from control_room.models import Event, Instruction, Unit
from control_room.web.footage import checksum_hex
from protocol.times import parse_aware

CHUNK = 1024 * 1024


class SourceError(ControlRoomError):
    """Footage for the package is missing, unreadable or does not match what the unit signed."""


@dataclass(frozen=True)
class RecordRef:
    unit: Unit
    event_id: str
    prefix: str  # "<prefix>/<unit>/<YYYY>/<MM>/<DD>/<event_id>/"
    instruction: Instruction | None = None

    @property
    def manifest_key(self) -> str:
        return self.prefix + "manifest.json"


def range_event_id(unit_id: str, instruction_id: str) -> str:
    """As agent/upload/ranges.py names the record of an upload_range."""
    return f"{unit_id}-range-{instruction_id.replace(':', '.')}"


def _day_prefix(s3_prefix: str, unit_id: str, start: datetime, event_id: str) -> str:
    parts = [s3_prefix.strip("/"), unit_id, f"{start:%Y}", f"{start:%m}", f"{start:%d}", event_id]
    return "/".join(p for p in parts if p) + "/"


def records(db: Session, req: DisclosureRequest, s3_prefix: str) -> list[RecordRef]:
    """The unit records the request covers: its upload_range records, or its chosen events."""
    out: list[RecordRef] = []
    for iid in req.instruction_ids or []:
        ins = db.scalar(select(Instruction).where(Instruction.instruction_id == iid))
        if ins is None:
            continue
        start = parse_aware(str(ins.params["start"]))
        eid = range_event_id(ins.unit.unit_id, iid)
        out.append(RecordRef(ins.unit, eid, _day_prefix(s3_prefix, ins.unit.unit_id, start, eid), ins))
    for eid in req.event_ids or []:
        ev = db.scalar(select(Event).where(Event.event_id == eid))
        manifest = (ev.objects or {}).get("manifest") if ev is not None else None
        if ev is None or not isinstance(manifest, dict) or not isinstance(manifest.get("key"), str):
            continue
        out.append(RecordRef(ev.unit, eid, posixpath.dirname(manifest["key"]) + "/"))
    return out


def _missing(exc: Exception) -> bool:
    code = str(getattr(exc, "response", {}).get("Error", {}).get("Code", ""))
    return code in ("404", "NoSuchKey", "NotFound")


def progress(client: Any, bucket: str, ref: RecordRef) -> dict[str, Any]:
    """How far the unit's upload of one record is: waiting, acknowledged, uploading k/n, complete."""
    from botocore.exceptions import BotoCoreError, ClientError

    acked = ref.instruction is None or ref.instruction.acked_at is not None
    try:
        raw = client.get_object(Bucket=bucket, Key=ref.manifest_key)["Body"].read()
    except ClientError as exc:
        if _missing(exc):
            state = "waiting for the unit to upload" if acked else "waiting for the unit to take the request"
            return {"event_id": ref.event_id, "state": state, "done": 0, "total": None}
        return {"event_id": ref.event_id, "state": "bucket error", "done": 0, "total": None}
    except BotoCoreError:
        return {"event_id": ref.event_id, "state": "bucket unreachable", "done": 0, "total": None}
    try:
        doc, _ = verify_unit_manifest(raw)
    except SignatureError as err:
        return {"event_id": ref.event_id, "state": f"manifest refused: {err}", "done": 0, "total": None}
    done = 0
    for f in doc["files"]:
        try:
            client.head_object(Bucket=bucket, Key=ref.prefix + f["name"])
            done += 1
        except ClientError:
            pass
    total = len(doc["files"])
    return {
        "event_id": ref.event_id,
        "state": "complete" if done == total else "uploading",
        "done": done,
        "total": total,
    }


def unit_key(db: Session, unit: Unit, embedded_b64: str, now: datetime) -> str:
    """Check a manifest's key against the unit's registered or pinned key (pinned on first use)."""
    row = db.scalar(select(UnitSigningKey).where(UnitSigningKey.unit_pk == unit.id))
    if row is None:
        db.add(UnitSigningKey(unit_pk=unit.id, public_key=embedded_b64, source="pinned", first_seen_at=now))
        db.flush()
        return "pinned"
    if row.public_key != embedded_b64:
        raise SourceError(f"{unit.unit_id}: manifest signed by a key that is not the unit's ({row.source})")
    return row.source


@dataclass
class FetchedFile:
    name: str
    role: str
    size: int
    sha256: str
    sha512: str
    version_id: str | None
    s3_checksum: str | None
    last_modified: datetime | None
    key: str


def read_manifest(client: Any, bucket: str, ref: RecordRef) -> tuple[bytes, dict[str, Any], str | None]:
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        answer = client.get_object(Bucket=bucket, Key=ref.manifest_key)
        raw = answer["Body"].read()
    except (ClientError, BotoCoreError) as exc:
        raise SourceError(
            f"{ref.manifest_key}: cannot read the unit's manifest ({type(exc).__name__})"
        ) from None
    try:
        doc, _ = verify_unit_manifest(raw)
    except SignatureError as err:
        raise SourceError(f"{ref.manifest_key}: {err}") from None
    if doc["unit_id"] != ref.unit.unit_id or doc.get("event_id") != ref.event_id:
        raise SourceError(f"{ref.manifest_key}: manifest is for {doc['unit_id']}/{doc.get('event_id')}")
    return raw, doc, answer.get("VersionId")


def fetch_file(client: Any, bucket: str, ref: RecordRef, spec: dict[str, Any], out: BinaryIO) -> FetchedFile:
    """Copy one object into `out`, checked against the unit's signed size and SHA-256 and S3's checksum."""
    from botocore.exceptions import BotoCoreError, ClientError

    name = str(spec["name"])
    if "/" in name or name.startswith(".") or not name:
        raise SourceError(f"{ref.manifest_key}: unsafe file name {name!r}")
    key = ref.prefix + name
    try:
        head = client.head_object(Bucket=bucket, Key=key, ChecksumMode="ENABLED")
        version = head.get("VersionId")
        kwargs: dict[str, Any] = {"Bucket": bucket, "Key": key}
        if version and version != "null":
            kwargs["VersionId"] = version
        body = client.get_object(**kwargs)["Body"]
        sha256, sha512, size = hashlib.sha256(), hashlib.sha512(), 0
        for chunk in body.iter_chunks(CHUNK):
            sha256.update(chunk)
            sha512.update(chunk)
            size += len(chunk)
            out.write(chunk)
    except (ClientError, BotoCoreError) as exc:
        raise SourceError(f"{key}: cannot read ({type(exc).__name__})") from None
    if size != spec["size"] or sha256.hexdigest() != spec["sha256"]:
        raise SourceError(f"{key}: differs from the unit's signed manifest (SHA-256 or size)")
    s3sum = checksum_hex(head.get("ChecksumSHA256"))
    if s3sum is not None and s3sum != sha256.hexdigest():
        raise SourceError(f"{key}: differs from the storage checksum")
    return FetchedFile(
        name,
        str(spec.get("role", "")),
        size,
        sha256.hexdigest(),
        sha512.hexdigest(),
        version,
        s3sum,
        head.get("LastModified"),
        key,
    )
