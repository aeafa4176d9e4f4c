"""Evidential holds: an S3 Object Lock legal hold on every central object version of a request's
footage, plus an instruction asking the unit to keep the covering segments past its retention.

Placed and released from the request page; each step is recorded in the register by the caller.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from control_room import instructions
from control_room.errors import ControlRoomError
from control_room.evidence import sources
from control_room.evidence.models import DisclosureRequest, EvidenceHold, EvidencePackage
from control_room.models import InstructionType, User

HOLD_INSTRUCTION = "hold_range"
RELEASE_INSTRUCTION = "release_hold"


class HoldError(ControlRoomError):
    """The hold cannot be placed or released (bucket without Object Lock, storage refused, bad input)."""


def _iso(ts: datetime) -> str:
    return ts.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _objects(
    db: Session, req: DisclosureRequest, client: Any, bucket: str, s3_prefix: str
) -> list[dict[str, Any]]:
    """The object versions to hold: the latest package's, else what the bucket holds for the request now."""
    pkg = db.scalar(
        select(EvidencePackage)
        .where(EvidencePackage.request_id == req.id)
        .order_by(EvidencePackage.id.desc())
        .limit(1)
    )
    if pkg is not None:
        return [
            {"bucket": o["bucket"], "key": o["key"], "version_id": o.get("version_id")} for o in pkg.objects
        ]
    out = []
    for ref in sources.records(db, req, s3_prefix):
        try:
            _, doc, version = sources.read_manifest(client, bucket, ref)
        except sources.SourceError:
            continue
        out.append({"bucket": bucket, "key": ref.manifest_key, "version_id": version})
        for f in doc["files"]:
            try:
                head = client.head_object(Bucket=bucket, Key=ref.prefix + f["name"])
            except Exception:  # noqa: BLE001,S112 (not uploaded yet: nothing to hold centrally)
                continue
            out.append({"bucket": bucket, "key": ref.prefix + f["name"], "version_id": head.get("VersionId")})
    return out


def _set(client: Any, objects: list[dict[str, Any]], status: str) -> None:
    from botocore.exceptions import BotoCoreError, ClientError

    for o in objects:
        kwargs: dict[str, Any] = {"Bucket": o["bucket"], "Key": o["key"], "LegalHold": {"Status": status}}
        if o.get("version_id") and o["version_id"] != "null":
            kwargs["VersionId"] = o["version_id"]
        try:
            client.put_object_legal_hold(**kwargs)
        except (ClientError, BotoCoreError) as exc:
            code = getattr(exc, "response", {}).get("Error", {}).get("Code", type(exc).__name__)
            raise HoldError(
                f"{o['key']}: storage refused the legal hold ({code}); is Object Lock enabled on the bucket?"
            ) from None


def place(
    db: Session,
    req: DisclosureRequest,
    user: User,
    now: datetime,
    review: date,
    reason: str,
    client: Any,
    bucket: str,
    s3_prefix: str = "units",
) -> EvidenceHold:
    reason = reason.strip()
    if not reason:
        raise HoldError("a reason is required")
    if review <= now.date():
        raise HoldError("the review date must be in the future")
    objects = _objects(db, req, client, bucket, s3_prefix)
    unit_range = req.unit is not None and req.range_start is not None and req.range_end is not None
    if not objects and not unit_range:
        raise HoldError("no central footage to hold yet")
    _set(client, objects, "ON")
    row = EvidenceHold(
        council_id=req.council_id,
        request_id=req.id,
        unit_pk=req.unit_pk,
        start=req.range_start,
        end=req.range_end,
        reason=reason[:4000],
        review_date=review,
        objects=objects,
        created_at=now,
        created_by_id=user.id,
    )
    db.add(row)
    db.flush()
    if unit_range and req.unit is not None and req.range_start is not None and req.range_end is not None:
        ins = instructions.queue(
            db,
            req.unit,
            InstructionType(HOLD_INSTRUCTION),
            {
                "start": _iso(req.range_start),
                "end": _iso(req.range_end),
                "hold": f"evidence-{row.id}",
                "reason": f"{req.reference} {req.crime_ref}"[:120],
            },
            user,
        )
        row.instruction_id = ins.instruction_id
    return row


def release(db: Session, row: EvidenceHold, user: User, now: datetime, reason: str, client: Any) -> None:
    reason = reason.strip()
    if not reason:
        raise HoldError("a reason for the release is required")
    if row.released_at is not None:
        raise HoldError("already released")
    _set(client, row.objects, "OFF")
    row.released_at, row.released_by_id, row.release_reason = now, user.id, reason[:4000]
    if row.unit is not None and row.instruction_id:
        instructions.queue(
            db, row.unit, InstructionType(RELEASE_INSTRUCTION), {"hold": f"evidence-{row.id}"}, user
        )
