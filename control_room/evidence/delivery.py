"""Push a package to a police-provided store (S3-compatible, its own endpoint and credentials), then
verify it there by reading it back; the delivery and its verification are recorded.

`kind` other than "s3" (e.g. SFTP) would be another function here; the caller writes the register line.
"""

from __future__ import annotations

import base64
import hashlib
import stat
from datetime import datetime
from pathlib import Path
from typing import Any

from control_room.errors import ControlRoomError
from control_room.evidence.models import Delivery, EvidencePackage, PoliceStore
from control_room.models import User

CHUNK = 1024 * 1024


class DeliveryError(ControlRoomError):
    """The store is misconfigured or refused the upload or the check."""


def _secret(store: PoliceStore) -> str:
    path = Path(store.secret_file)
    if not store.secret_file or not path.is_file():
        raise DeliveryError(f"store {store.name}: secret file {store.secret_file!r} not found")
    if stat.S_IMODE(path.stat().st_mode) & 0o077:
        raise DeliveryError(f"store {store.name}: secret file is readable by others (chmod 600)")
    return path.read_text(encoding="utf-8").strip()


def client_for(store: PoliceStore) -> Any:
    import boto3
    from botocore.config import Config

    return boto3.client(
        "s3",
        endpoint_url=store.endpoint_url or None,
        region_name=store.region,
        aws_access_key_id=store.access_key_id,
        aws_secret_access_key=_secret(store),
        verify=store.ca_bundle or True,  # TLS verification is never turned off
        config=Config(connect_timeout=5, read_timeout=60, retries={"max_attempts": 3}),
    )


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def push(
    db: Any, pkg: EvidencePackage, store: PoliceStore, user: User, now: datetime, path: Path
) -> Delivery:
    """Upload the zip with its SHA-256 checksum, read it back and compare; the row says how it went."""
    from botocore.exceptions import BotoCoreError, ClientError

    row = Delivery(package_id=pkg.id, store_id=store.id, started_at=now, created_by_id=user.id)
    db.add(row)
    key = "/".join(p for p in (store.prefix.strip("/"), f"{pkg.exhibit_ref}.zip") if p)
    try:
        if store.kind != "s3":
            raise DeliveryError(f"store kind {store.kind!r} is not supported yet")
        if _sha256(path) != pkg.sha256:
            raise DeliveryError("the package file differs from the one recorded when it was built")
        client = client_for(store)
        with path.open("rb") as fh:
            answer = client.put_object(
                Bucket=store.bucket,
                Key=key,
                Body=fh,
                ContentType="application/zip",
                ChecksumAlgorithm="SHA256",
                ChecksumSHA256=base64.b64encode(bytes.fromhex(pkg.sha256)).decode(),
                Metadata={"sha256": pkg.sha256, "exhibit": pkg.exhibit_ref},
            )
        digest = hashlib.sha256()
        body = client.get_object(Bucket=store.bucket, Key=key)["Body"]
        for chunk in body.iter_chunks(CHUNK):
            digest.update(chunk)
        if digest.hexdigest() != pkg.sha256:
            raise DeliveryError("the copy in the store does not match the package (SHA-256)")
        row.objects = [
            {
                "bucket": store.bucket,
                "key": key,
                "version_id": answer.get("VersionId"),
                "sha256": digest.hexdigest(),
                "size": pkg.size,
            }
        ]
        row.state = "verified"
    except DeliveryError as err:
        row.state, row.error = "failed", str(err)
    except (ClientError, BotoCoreError) as exc:
        code = getattr(exc, "response", {}).get("Error", {}).get("Code", type(exc).__name__)
        row.state, row.error = "failed", f"store refused or unreachable ({code})"
    row.finished_at = now
    db.flush()
    return row
