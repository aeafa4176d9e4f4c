"""The continuity record of a package (continuity.json, and continuity.html printed from it): where and
when each file was recorded, how it reached the package, and every custody step up to packaging.

Built by evidence.package; later steps (delivered, downloaded) are in the disclosure register.
"""

from __future__ import annotations

import hashlib
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from control_room.evidence.models import DisclosureRequest, EvidenceHold
from control_room.models import Deployment, Unit, User
from control_room.web.common import local_time


def _iso(value: datetime | None) -> str | None:
    return value.isoformat().replace("+00:00", "Z") if value is not None else None


def _site(db: Session, unit: Unit, at: datetime | None) -> dict[str, Any]:
    if at is not None:
        dep = db.scalar(
            select(Deployment)
            .where(Deployment.unit_pk == unit.id, Deployment.start <= at)
            .where((Deployment.recovered_at.is_(None)) | (Deployment.recovered_at > at))
            .order_by(Deployment.start.desc())
            .limit(1)
        )
        if dep is not None:
            return {
                "name": dep.site.name,
                "address": dep.site.address,
                "lat": dep.site.lat,
                "lon": dep.site.lon,
                "source": "deployment record",
                "purpose": dep.purpose,
                "dpia_ref": dep.dpia_ref,
            }
    return {
        "name": None,
        "lat": unit.lat,
        "lon": unit.lon,
        "source": "unit's last reported GPS position" if unit.lat is not None else "unknown",
    }


def continuity_doc(
    db: Session,
    req: DisclosureRequest,
    exhibit: str,
    records: list[dict[str, Any]],
    working_copies: list[dict[str, Any]],
    organisation: str,
    cr_key: bytes,
    user: User,
    now: datetime,
) -> dict[str, Any]:
    out_records = []
    custody: list[dict[str, Any]] = []
    for rec in records:
        ref, doc = rec["ref"], rec["doc"]
        unit = ref.unit
        base = f"data/master/{unit.unit_id}/{ref.event_id}"
        first_start = next((t[0] for t in rec["times"] if t[0] is not None), None)
        files = []
        for f, (start, end) in zip(rec["fetched"], rec["times"], strict=True):
            files.append(
                {
                    "path": f"{base}/{f.name}",
                    "role": f.role,
                    "size": f.size,
                    "sha256": f.sha256,
                    "start_utc": _iso(start),
                    "end_utc": _iso(end),
                    "start_uk": local_time(start) if start else None,
                    "end_uk": local_time(end) if end else None,
                    "uploaded_at": _iso(f.last_modified),
                    "s3": {"key": f.key, "version_id": f.version_id, "checksum_sha256": f.s3_checksum},
                }
            )
        state = unit.last_state or {}
        out_records.append(
            {
                "unit_id": unit.unit_id,
                "event_id": ref.event_id,
                "site": _site(db, unit, first_start),
                "site_reported_by_unit": doc.get("site"),
                "clock_synced": doc.get("clock_synced"),
                "software_version": doc.get("software_version"),
                "uploader_version": doc.get("uploader_version"),
                "config_version": state.get("config_version") if isinstance(state, dict) else None,
                "manifest": {
                    "path": f"{base}/manifest.json",
                    "sha256": hashlib.sha256(rec["raw"]).hexdigest(),
                    "previous_manifest_sha256": doc.get("previous_manifest_sha256"),
                    "signature": "verified",
                    "key": rec["key_source"],
                    "key_sha256": hashlib.sha256(_raw_key(doc)).hexdigest(),
                    "s3_version_id": rec["manifest_version"],
                },
                "files": files,
            }
        )
        uploaded = [f.last_modified for f in rec["fetched"] if f.last_modified is not None]
        custody.append(
            {
                "step": "recorded",
                "at": _iso(first_start),
                "by": f"unit {unit.unit_id}",
                "detail": ref.event_id,
            }
        )
        if uploaded:
            custody.append(
                {
                    "step": "uploaded",
                    "at": _iso(max(uploaded)),
                    "by": f"unit {unit.unit_id}",
                    "detail": f"{len(uploaded)} file(s) to central storage",
                }
            )
        custody.append(
            {
                "step": "verified",
                "at": _iso(now),
                "by": "control room",
                "detail": "SHA-256 of every file against the unit's signed manifest and storage checksum",
            }
        )
    if req.decided_at is not None:
        custody.append(
            {
                "step": "approved",
                "at": _iso(req.decided_at),
                "by": req.decided_by.username if req.decided_by else "",
                "detail": req.decision_reason,
            }
        )
    for hold in db.scalars(select(EvidenceHold).where(EvidenceHold.request_id == req.id)):
        custody.append(
            {
                "step": "held",
                "at": _iso(hold.created_at),
                "by": "control room",
                "detail": f"hold {hold.id} until reviewed on {hold.review_date.isoformat()}",
            }
        )
    custody.append({"step": "packaged", "at": _iso(now), "by": user.username, "detail": exhibit})
    custody.sort(key=lambda c: c["at"] or "")
    return {
        "schema": 1,
        "exhibit_ref": exhibit,
        "producing_organisation": organisation or req.council.name,
        "packaged_at": _iso(now),
        "packaged_at_uk": local_time(now),
        "packaged_by": user.username,
        "control_room_key_sha256": hashlib.sha256(cr_key).hexdigest(),
        "request": {
            "reference": req.reference,
            "crime_reference": req.crime_ref,
            "lawful_basis": req.basis_text,
            "reason": req.reason,
            "requesting_officer": req.officer_name,
            "collar_number": req.officer_collar,
            "force": req.officer_force,
            "authorised_by": f"{req.authorising_rank} {req.authorising_name}",
            "range_start_utc": _iso(req.range_start),
            "range_end_utc": _iso(req.range_end),
        },
        "records": out_records,
        "working_copies": working_copies,
        "custody": custody,
        "later_steps": f"deliveries and downloads are in the disclosure register under {req.reference}",
        "time_note": "times are UTC (Z); UK local times (GMT/BST) are given beside them",
    }


def _raw_key(doc: dict[str, Any]) -> bytes:
    import base64

    return base64.b64decode(doc["public_key"])


LATER_STEPS = {
    "share_created": "delivered (share link)",
    "pushed": "delivered (police store)",
    "share_code": "link opened with the access code",
    "receipt": "receipt confirmed",
    "download": "downloaded",
    "staff_download": "downloaded by staff",
    "share_revoked": "share link revoked",
    "held": "held",
    "hold_released": "hold released",
}


def full_custody(db: Session, pkg: Any, zip_path: Any, now: datetime) -> dict[str, Any]:
    """The package's own custody steps (from its signed continuity.json) followed by every later
    step the register holds for it: delivered, receipt, downloaded, revoked, held, released."""
    import json
    import zipfile

    from control_room.evidence.models import RegisterEntry

    with zipfile.ZipFile(zip_path) as zf:
        packaged = json.loads(zf.read(f"{pkg.exhibit_ref}/continuity.json"))
    steps = list(packaged["custody"])
    rows = db.scalars(
        select(RegisterEntry)
        .where(
            RegisterEntry.request_id == pkg.request_id,
            RegisterEntry.at >= pkg.created_at,
            RegisterEntry.outcome == "ok",
        )
        .order_by(RegisterEntry.at, RegisterEntry.id)
    )
    for row in rows:
        step = LATER_STEPS.get(row.action)
        detail = row.detail or {}
        if step is None or detail.get("exhibit", pkg.exhibit_ref) != pkg.exhibit_ref:
            continue
        who = row.actor or "-"
        if row.recipient_name:
            who += f" for {row.recipient_name}, {row.recipient_org}"
        steps.append(
            {
                "step": step,
                "at": _iso(row.at),
                "by": who,
                "detail": ", ".join(f"{k}={v}" for k, v in sorted(detail.items()) if k != "exhibit"),
                "ip": row.ip,
            }
        )
    return {
        "exhibit_ref": pkg.exhibit_ref,
        "package_sha256": pkg.sha256,
        "generated_at": _iso(now),
        "custody": steps,
    }
