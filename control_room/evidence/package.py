"""The evidence package builder: one signed BagIt zip per request, masters byte-identical to what the
unit recorded and signed, a working copy, continuity record, VERIFY.txt and a standalone verify.py.

Called by the request page (and tests) inside an app context; reads footage through evidence.sources.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import tempfile
import zipfile
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import bagit
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from flask import render_template
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from control_room import __version__
from control_room.errors import ControlRoomError
from control_room.evidence import register, signing, sources, working
from control_room.evidence.continuity import continuity_doc
from control_room.evidence.models import DisclosureRequest, EvidencePackage, RequestState
from control_room.models import User
from protocol.times import parse_aware

STAMP_RE = re.compile(r"(\d{8}T\d{6})(?:\.(\d{3}))?Z")
VERIFY_SOURCE = Path(__file__).with_name("standalone_verify.py")


class PackageError(ControlRoomError):
    """The package cannot be built as asked (nothing is created); the message names the cause."""


@dataclass(frozen=True)
class BuildConfig:
    client: Any  # boto3 S3 client reading the footage bucket
    bucket: str
    s3_prefix: str
    evidence_dir: Path
    key: Ed25519PrivateKey
    organisation: str
    evidence_bucket: str = ""  # also store the zip there (for presigned share downloads)
    evidence_prefix: str = "evidence"


def stored_key(prefix: str, pkg: EvidencePackage) -> str:
    """The zip's key in the evidence bucket."""
    return "/".join(p for p in (prefix.strip("/"), pkg.file_name) if p)


def _file_start(name: str) -> datetime | None:
    match = STAMP_RE.search(name)
    if match is None:
        return None
    ts = datetime.strptime(match.group(1), "%Y%m%dT%H%M%S").replace(tzinfo=UTC)
    return ts + timedelta(milliseconds=int(match.group(2) or 0))


def _iso(value: Any) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        return parse_aware(value)
    except ValueError:
        return None


def _times(
    doc: dict[str, Any], fetched: list[sources.FetchedFile]
) -> list[tuple[datetime | None, datetime | None]]:
    """Start and end (UTC) of each file: segments from their names, clips from the manifest."""
    starts = [
        _file_start(f.name) if f.role.startswith("segment") else _iso(doc.get("clip_start")) for f in fetched
    ]
    out = []
    for i, f in enumerate(fetched):
        if f.role.startswith("segment"):
            nxt = next((s for s in starts[i + 1 :] if s is not None), None)
            out.append((starts[i], nxt or _iso(doc.get("clip_end"))))
        elif f.role == "snapshot":
            out.append((_iso(doc.get("start")), _iso(doc.get("start"))))
        else:
            out.append((starts[i], _iso(doc.get("clip_end"))))
    return out


def _write_private(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


def _zip(bag_dir: Path, out: Path) -> str:
    """Zip the bag (stored, no recompression of video) to a temp name, fsync, rename; SHA-256 of the zip."""
    tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh, zipfile.ZipFile(fh, "w", zipfile.ZIP_STORED) as zf:
        for path in sorted(p for p in bag_dir.rglob("*") if p.is_file()):
            zf.write(path, f"{bag_dir.name}/{path.relative_to(bag_dir).as_posix()}")
    with tmp.open("rb") as fh:
        os.fsync(fh.fileno())
    os.replace(tmp, out)
    dir_fd = os.open(out.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
    digest = hashlib.sha256()
    with out.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _store(cfg: BuildConfig, path: Path, key: str, digest: str) -> None:
    """Upload the zip with its SHA-256 checksum; a refusal fails the build (the local zip is removed)."""
    import base64

    from botocore.exceptions import BotoCoreError, ClientError

    try:
        with path.open("rb") as fh:
            cfg.client.put_object(
                Bucket=cfg.evidence_bucket,
                Key=key,
                Body=fh,
                ContentType="application/zip",
                ChecksumAlgorithm="SHA256",
                ChecksumSHA256=base64.b64encode(bytes.fromhex(digest)).decode(),
            )
    except (ClientError, BotoCoreError) as exc:
        path.unlink(missing_ok=True)
        raise PackageError(
            f"could not store the package in {cfg.evidence_bucket} ({type(exc).__name__})"
        ) from None


def package_path(evidence_dir: Path, pkg: EvidencePackage) -> Path:
    return evidence_dir / pkg.file_name


def build(
    db: Session, req: DisclosureRequest, user: User, now: datetime, cfg: BuildConfig, ip: str = ""
) -> EvidencePackage:
    """Build, sign and store the package; PackageError (nothing created) if any footage fails a check."""
    if req.state not in (RequestState.APPROVED, RequestState.PACKAGED):
        raise PackageError(
            f"request {req.reference} is {req.state.value}: only approved requests are packaged"
        )
    refs = sources.records(db, req, cfg.s3_prefix)
    if not refs:
        raise PackageError("no footage located for this request yet")
    count = (
        db.scalar(
            select(func.count()).select_from(EvidencePackage).where(EvidencePackage.request_id == req.id)
        )
        or 0
    )
    exhibit = f"{req.reference}-P{count + 1}"
    cfg.evidence_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    work = Path(tempfile.mkdtemp(prefix=".build-", dir=cfg.evidence_dir))
    try:
        bag_dir = work / exhibit
        bag_dir.mkdir()
        records, objects = _fetch_all(db, refs, cfg, bag_dir, now)
        working_copies = _working_copies(exhibit, records, bag_dir)
        bag = bagit.make_bag(str(bag_dir), _bag_info(req, exhibit, cfg, now), checksums=["sha256", "sha512"])
        doc = continuity_doc(
            db,
            req,
            exhibit,
            records,
            working_copies,
            cfg.organisation,
            signing.raw_public(cfg.key),
            user,
            now,
        )
        _tag_files(bag_dir, records, doc, cfg)
        bag.save()  # tag manifests now cover the keys, signatures, continuity, VERIFY.txt and verify.py
        bag = bagit.Bag(str(bag_dir))
        try:
            bag.validate()
        except bagit.BagError as err:
            raise PackageError(f"self-check of the bag failed: {err}") from None
        tagmanifest = (bag_dir / "tagmanifest-sha256.txt").read_bytes()
        (bag_dir / "tagmanifest-sha256.txt.sig").write_bytes(cfg.key.sign(tagmanifest))
        rel = Path(req.reference) / f"{exhibit}.zip"
        (cfg.evidence_dir / req.reference).mkdir(exist_ok=True, mode=0o700)
        digest = _zip(bag_dir, cfg.evidence_dir / rel)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    out = cfg.evidence_dir / rel
    pkg = EvidencePackage(
        request_id=req.id,
        exhibit_ref=exhibit,
        file_name=str(rel),
        size=out.stat().st_size,
        sha256=digest,
        tagmanifest_sha256=hashlib.sha256(tagmanifest).hexdigest(),
        master_files=sum(len(r["fetched"]) for r in records),
        objects=objects,
        created_at=now,
        created_by_id=user.id,
    )
    if cfg.evidence_bucket:
        _store(cfg, out, stored_key(cfg.evidence_prefix, pkg), digest)
    db.add(pkg)
    req.state = RequestState.PACKAGED
    db.flush()
    register.note(
        db,
        req.council_id,
        req,
        "packaged",
        user,
        now,
        ip=ip,
        detail={"exhibit": exhibit, "sha256": digest, "files": pkg.master_files},
    )
    return pkg


def _fetch_all(
    db: Session, refs: list[sources.RecordRef], cfg: BuildConfig, bag_dir: Path, now: datetime
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    records: list[dict[str, Any]] = []
    objects: list[dict[str, Any]] = []
    for ref in refs:
        raw, doc, manifest_version = sources.read_manifest(cfg.client, cfg.bucket, ref)
        try:
            key_source = sources.unit_key(db, ref.unit, doc["public_key"], now)
        except sources.SourceError as err:
            raise PackageError(str(err)) from None
        folder = bag_dir / "master" / ref.unit.unit_id / ref.event_id
        folder.mkdir(parents=True)
        _write_private(folder / "manifest.json", raw)
        fetched = []
        for spec in doc["files"]:
            try:
                with (folder / str(spec["name"])).open("xb") as out:
                    fetched.append(sources.fetch_file(cfg.client, cfg.bucket, ref, spec, out))
            except (sources.SourceError, FileExistsError) as err:
                raise PackageError(str(err)) from None
        objects.append({"bucket": cfg.bucket, "key": ref.manifest_key, "version_id": manifest_version})
        objects += [
            {"bucket": cfg.bucket, "key": f.key, "version_id": f.version_id, "sha256": f.sha256}
            for f in fetched
        ]
        records.append(
            {
                "ref": ref,
                "raw": raw,
                "doc": doc,
                "fetched": fetched,
                "key_source": key_source,
                "times": _times(doc, fetched),
                "manifest_version": manifest_version,
                "signature": signing.verify_unit_manifest(raw)[1],
            }
        )
    return records, objects


def _working_copies(exhibit: str, records: list[dict[str, Any]], bag_dir: Path) -> list[dict[str, Any]]:
    """A joined playable MP4 per range record (segments); a failure is noted, masters are untouched."""
    out: list[dict[str, Any]] = []
    for rec in records:
        segs = [f for f in rec["fetched"] if f.role.startswith("segment")]
        if not segs:
            continue
        ref = rec["ref"]
        folder = bag_dir / "master" / ref.unit.unit_id / ref.event_id
        name = working.working_name(exhibit, ref.event_id)
        target = bag_dir / "working" / name
        target.parent.mkdir(exist_ok=True)
        try:
            working.join_segments([folder / f.name for f in segs], target)
            out.append(
                {
                    "path": f"data/working/{name}",
                    "made_from": [f"data/master/{ref.unit.unit_id}/{ref.event_id}/{f.name}" for f in segs],
                    "how": "video packets of the master segments concatenated without re-encoding",
                }
            )
        except Exception as err:  # noqa: BLE001 (any codec error: the package still has its masters)
            target.unlink(missing_ok=True)
            out.append({"path": None, "made_from": [], "how": f"not made: {type(err).__name__}: {err}"})
    return out


def _bag_info(req: DisclosureRequest, exhibit: str, cfg: BuildConfig, now: datetime) -> dict[str, str]:
    return {
        "Source-Organization": cfg.organisation or req.council.name,
        "External-Identifier": exhibit,
        "External-Description": f"CCTV footage disclosed for {req.crime_ref} ({req.reference})",
        "Exhibit-Reference": exhibit,
        "Crime-Reference": req.crime_ref,
        "Disclosure-Request": req.reference,
        "Lawful-Basis": req.basis_text,
        "Requesting-Officer": f"{req.officer_name} ({req.officer_collar}), {req.officer_force}",
        "Authorising-Officer": f"{req.authorising_rank} {req.authorising_name}",
        "Producing-Organization": cfg.organisation or req.council.name,
        "Packaging-Time-UTC": now.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z"),
        "Bag-Software-Agent": f"mobile-cctv control room {__version__}",
    }


def _tag_files(bag_dir: Path, records: list[dict[str, Any]], doc: dict[str, Any], cfg: BuildConfig) -> None:
    import json

    keys = bag_dir / "keys"
    sigs = bag_dir / "signatures"
    keys.mkdir()
    sigs.mkdir()
    (keys / "control-room.pem").write_bytes(signing.public_pem(cfg.key))
    for rec in records:
        ref = rec["ref"]
        (keys / f"unit-{ref.unit.unit_id}.pem").write_bytes(signing.pem_from_b64(rec["doc"]["public_key"]))
        (sigs / f"{ref.event_id}.signed").write_bytes(signing.canonical(rec["doc"]))
        (sigs / f"{ref.event_id}.sig").write_bytes(rec["signature"])
    (bag_dir / "continuity.json").write_text(
        json.dumps(doc, indent=1, sort_keys=True) + "\n", encoding="utf-8"
    )
    (bag_dir / "continuity.html").write_text(
        render_template("evidence/continuity.html", c=doc), encoding="utf-8"
    )
    (bag_dir / "VERIFY.txt").write_text(
        render_template("evidence/VERIFY.txt", c=doc, records=records), encoding="utf-8"
    )
    shutil.copyfile(VERIFY_SOURCE, bag_dir / "verify.py")
