"""Footage in the bucket, seen from the control room: integrity checks and byte-range streaming.

The service streams snapshots and clips itself (no raw presigned URL, which would be a bearer token
anyone could replay), so every byte a person sees passes a login, a council check and the audit log.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from flask import Flask, Response, current_app
from werkzeug.http import parse_range_header

CHUNK = 64 * 1024
CONTENT_TYPES = {"snapshot": "image/jpeg", "clip": "video/mp4", "manifest": "application/json"}


@dataclass(frozen=True)
class StoredObject:
    """One object of an event as the unit announced it: key, size and SHA-256 (hex)."""

    name: str
    key: str
    size: int | None
    sha256: str | None


@dataclass(frozen=True)
class Verification:
    state: str  # verified, metadata, mismatch, missing, unchecked, error
    level: str  # ok, warn, bad, muted
    text: str


def stored_objects(objects: Any) -> dict[str, StoredObject]:
    """The event's `objects` JSON as typed records; malformed entries are left out."""
    out: dict[str, StoredObject] = {}
    if not isinstance(objects, dict):
        return out
    for name, spec in objects.items():
        if isinstance(spec, dict) and isinstance(spec.get("key"), str) and spec["key"]:
            size = spec.get("size") if isinstance(spec.get("size"), int) else None
            digest = spec.get("sha256") if isinstance(spec.get("sha256"), str) else None
            out[str(name)] = StoredObject(str(name), spec["key"], size, digest.lower() if digest else None)
    return out


def s3_client(app: Flask | None = None) -> Any:
    """One boto3 client per process (thread-safe), built from the settings' read-only credentials."""
    app = app or current_app._get_current_object()  # type: ignore[attr-defined]
    client = app.extensions.get("cctv_s3")
    if client is None:
        import boto3
        from botocore.config import Config

        s = app.config["SETTINGS"]
        keys: dict[str, str] = {}
        if s.s3_access_key_id is not None and s.s3_secret_access_key is not None:
            keys = {
                "aws_access_key_id": s.s3_access_key_id.get_secret_value(),
                "aws_secret_access_key": s.s3_secret_access_key.get_secret_value(),
            }
        client = boto3.client(
            "s3",
            endpoint_url=s.s3_endpoint_url,
            region_name=s.s3_region,
            config=Config(connect_timeout=3, read_timeout=20, retries={"max_attempts": 2}),
            **keys,
        )
        app.extensions["cctv_s3"] = client
    return client


def own_bucket(bucket: str) -> bool:
    """Only the configured footage bucket is read: a unit may name a bucket, not choose where we read."""
    return bucket == current_app.config["SETTINGS"].s3_bucket


FOREIGN_BUCKET = Verification("error", "bad", "the unit named a bucket this control room does not read")


def checksum_hex(value: Any) -> str | None:
    """S3's base64 ChecksumSHA256 as hex; a multipart composite ("...-3") is not a file digest."""
    if not isinstance(value, str) or "-" in value:
        return None
    try:
        return base64.b64decode(value, validate=True).hex()
    except (binascii.Error, ValueError):
        return None


def verify(bucket: str, obj: StoredObject) -> Verification:
    """Compare the announced SHA-256 and size with what the bucket says about the object."""
    from botocore.exceptions import BotoCoreError, ClientError

    if not own_bucket(bucket):
        return FOREIGN_BUCKET
    if not obj.sha256:
        return Verification("unchecked", "muted", "no SHA-256 was announced for this object")
    try:
        head = s3_client().head_object(Bucket=bucket, Key=obj.key, ChecksumMode="ENABLED")
    except ClientError as exc:
        code = str(exc.response.get("Error", {}).get("Code", ""))
        if code in ("404", "NoSuchKey", "NotFound"):
            return Verification("missing", "bad", "the object is not in the bucket")
        return Verification("error", "warn", f"bucket refused the check ({code})")
    except BotoCoreError as exc:
        return Verification("error", "warn", f"bucket unreachable ({type(exc).__name__})")
    if obj.size is not None and head.get("ContentLength") != obj.size:
        return Verification("mismatch", "bad", f"size {head.get('ContentLength')} != announced {obj.size}")
    checksum = checksum_hex(head.get("ChecksumSHA256"))
    if checksum is not None:
        if checksum == obj.sha256:
            return Verification("verified", "ok", "SHA-256 verified by the storage checksum")
        return Verification("mismatch", "bad", "storage SHA-256 differs from the announced one")
    meta = str(head.get("Metadata", {}).get("sha256", "")).lower()
    if meta:
        if meta == obj.sha256:
            return Verification(
                "metadata", "warn", "SHA-256 matches the upload metadata (not computed by storage)"
            )
        return Verification("mismatch", "bad", "upload metadata SHA-256 differs from the announced one")
    return Verification("unchecked", "muted", "the bucket holds no checksum for this object")


def verify_by_reading(bucket: str, obj: StoredObject) -> Verification:
    """Read the whole object and hash it: the strongest check, for when storage holds no checksum."""
    from botocore.exceptions import BotoCoreError, ClientError

    if not own_bucket(bucket):
        return FOREIGN_BUCKET
    digest = hashlib.sha256()
    try:
        body = s3_client().get_object(Bucket=bucket, Key=obj.key)["Body"]
        for chunk in body.iter_chunks(CHUNK):
            digest.update(chunk)
    except (ClientError, BotoCoreError) as exc:
        return Verification("error", "warn", f"could not read the object ({type(exc).__name__})")
    if digest.hexdigest() == obj.sha256:
        return Verification("verified", "ok", "SHA-256 verified by reading the whole object")
    return Verification("mismatch", "bad", f"content SHA-256 {digest.hexdigest()[:16]}... differs")


def parse_range(header: str | None) -> str | None:
    """A single byte range (werkzeug's parser) is passed on to S3 in its own form; anything else
    (multi-range, other units, junk) means the whole object."""
    wanted = parse_range_header(header.strip()) if header else None
    if wanted is None or wanted.units != "bytes" or len(wanted.ranges) != 1:
        return None
    start, stop = wanted.ranges[0]
    if start < 0:
        return f"bytes={start}"  # the last -start bytes
    return f"bytes={start}-" if stop is None else f"bytes={start}-{stop - 1}"


def stream(bucket: str, obj: StoredObject, range_header: str | None, download: bool = False) -> Response:
    """The object's bytes (or the asked range, 206) streamed from S3 in chunks; errors as 404/416/502."""
    from botocore.exceptions import BotoCoreError, ClientError

    if not own_bucket(bucket):
        return Response("footage in a bucket this control room does not read\n", 404, mimetype="text/plain")
    wanted = parse_range(range_header)
    kwargs = {"Bucket": bucket, "Key": obj.key}
    if wanted:
        kwargs["Range"] = wanted
    try:
        answer = s3_client().get_object(**kwargs)
    except ClientError as exc:
        code = str(exc.response.get("Error", {}).get("Code", ""))
        if code in ("NoSuchKey", "404"):
            return Response("footage not in the bucket\n", 404, mimetype="text/plain")
        if code == "InvalidRange":
            size = obj.size if obj.size is not None else "*"
            return Response("range not satisfiable\n", 416, {"Content-Range": f"bytes */{size}"})
        return Response(f"bucket refused ({code})\n", 502, mimetype="text/plain")
    except BotoCoreError as exc:
        return Response(f"bucket unreachable ({type(exc).__name__})\n", 502, mimetype="text/plain")
    body = answer["Body"]

    def chunks() -> Iterator[bytes]:
        try:
            yield from body.iter_chunks(CHUNK)
        finally:
            body.close()

    headers = {
        "Accept-Ranges": "bytes",
        "Content-Length": str(answer["ContentLength"]),
        "Cache-Control": "private, no-store",
    }
    if answer.get("ContentRange"):
        headers["Content-Range"] = answer["ContentRange"]
    if download:
        filename = obj.key.rsplit("/", 1)[-1].replace('"', "")
        headers["Content-Disposition"] = f'attachment; filename="{filename}"'
    mimetype = CONTENT_TYPES.get(obj.name, "application/octet-stream")
    status = 206 if answer.get("ContentRange") else 200
    return Response(chunks(), status=status, headers=headers, mimetype=mimetype, direct_passthrough=True)
