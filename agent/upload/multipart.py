"""Resumable multipart upload of one clip (job.py calls it on the bulk lane, requests go through s3.py):
parts sized from the measured link, resumed from ListParts, and a clip readied while its snapshot goes.

A clip waits for its event's snapshot and metadata (they must cross the link first); meanwhile the lane
checks the clip, creates its upload and hashes its parts (prepare), so its first part follows at once.
"""

from __future__ import annotations

import base64
import hashlib
import logging
from pathlib import Path
from typing import Any

import botocore.exceptions

from agent.fsutil import sha256_range
from agent.upload.link import choose_part_size
from agent.upload.model import Prepared
from agent.upload.queue import Job, Part, UploadQueue
from agent.upload.s3 import S3Target, _send, object_metadata

log = logging.getLogger(__name__)

MIB = 1024 * 1024
READ = 1024 * 1024  # file read size while hashing


def part_plan(size: int, part_size: int) -> list[tuple[int, int, int]]:
    """(part number, offset, length) for every part of a file."""
    return [(i + 1, off, min(part_size, size - off)) for i, off in enumerate(range(0, size, part_size))]


def scan(path: Path, size: int, part_size: int) -> tuple[str, dict[int, str]]:
    """One pass over a file: its SHA-256 (hex) and each part's SHA-256 (base64, S3's checksum form)."""
    whole = hashlib.sha256()
    parts: dict[int, str] = {}
    with open(path, "rb") as f:
        for number, _, length in part_plan(size, part_size):
            part = hashlib.sha256()
            left = length
            while left > 0 and (chunk := f.read(min(READ, left))):
                part.update(chunk)
                whole.update(chunk)
                left -= len(chunk)
            parts[number] = base64.b64encode(part.digest()).decode()
        while chunk := f.read(READ):  # a file longer than its record: the whole digest tells
            whole.update(chunk)
    return whole.hexdigest(), parts


def _part_checksum(path: Path, offset: int, length: int) -> str:
    return base64.b64encode(sha256_range(path, offset, length)).decode()  # streamed, never a whole part


def create(t: S3Target, job: Job, queue: UploadQueue, unit_id: str) -> tuple[str, int]:
    """Start a new multipart upload, its part size from the measured link; persisted before any part."""
    resp = t.client.create_multipart_upload(
        Bucket=t.bucket,
        Key=job.key,
        ContentType=job.content_type or "application/octet-stream",
        ChecksumAlgorithm="SHA256",
        Metadata=object_metadata(job, unit_id),
    )
    part_size = choose_part_size(job.size, t.watch.rate.bytes_s, t.part_size)
    queue.set_upload_id(job.id, resp["UploadId"], part_size)
    rate = t.watch.rate.bytes_s
    log.info("%s: new multipart upload, %d MiB parts (link %s)", job.key, part_size // MIB,
             f"{rate * 8 / 1000:.0f} kbit/s" if rate else "not measured yet")
    return resp["UploadId"], part_size


def prepare(t: S3Target, job: Job, path: Path, queue: UploadQueue, unit_id: str) -> Prepared | None:
    """Ready a clip that waits for its event's snapshot: check it against its record, create its
    upload (multipart) and hash its parts. None if the file does not match (the job's run says why)."""
    multi = job.size >= t.threshold and not job.upload_id
    part_size = choose_part_size(job.size, t.watch.rate.bytes_s, t.part_size) if multi else job.size
    stat = path.stat()
    digest, checksums = scan(path, job.size, max(1, part_size))
    if stat.st_size != job.size or digest != job.sha256:
        return None
    upload_id = None
    if multi:
        upload_id, chosen = create(t, job, queue, unit_id)
        if chosen != part_size:  # the link estimate moved meanwhile: hash again at the chosen size
            checksums = scan(path, job.size, chosen)[1]
            part_size = chosen
    return Prepared(job.id, stat.st_size, stat.st_mtime_ns, upload_id, part_size, checksums)


def _server_parts(t: S3Target, job: Job) -> list[dict[str, Any]] | None:
    """Parts the server holds for the job's UploadId; None if the upload is gone."""
    parts: list[dict[str, Any]] = []
    kwargs: dict[str, Any] = {"Bucket": t.bucket, "Key": job.key, "UploadId": job.upload_id}
    while True:
        try:
            page = t.client.list_parts(**kwargs)
        except botocore.exceptions.ClientError as err:
            if err.response.get("Error", {}).get("Code") == "NoSuchUpload":
                return None
            raise
        parts.extend(page.get("Parts", []))
        if not page.get("IsTruncated"):
            return parts
        kwargs["PartNumberMarker"] = page["NextPartNumberMarker"]


def _already_there(t: S3Target, job: Job) -> bool:
    """The job's object is in the bucket with its size and SHA-256 (False if we may not HEAD)."""
    try:
        head = t.client.head_object(Bucket=t.bucket, Key=job.key)
    except botocore.exceptions.ClientError as err:
        if err.response.get("ResponseMetadata", {}).get("HTTPStatusCode") in (403, 404):
            return False
        raise
    return head.get("ContentLength") == job.size and head.get("Metadata", {}).get("sha256") == job.sha256


def _resume(
    t: S3Target, job: Job, queue: UploadQueue, unit_id: str
) -> tuple[str | None, int, dict[int, Part]]:
    """Reconcile the persisted parts with ListParts; start a new upload if the old one is gone.

    Returns (upload id, part size, parts in); (None, 0, {}) when the old upload was completed already:
    nothing is left to send. A new upload's part size follows the measured link rate."""
    if job.upload_id:
        part_size = job.part_size or t.part_size
        plan = {n: ln for n, _, ln in part_plan(job.size, part_size)}
        server = _server_parts(t, job)
        if server is not None:
            mine = queue.parts(job.id)
            good = []
            for sp in server:
                n = sp["PartNumber"]
                if plan.get(n) == sp["Size"] and (n in mine or sp.get("ChecksumSHA256")):
                    good.append(
                        Part(n, sp["Size"], sp["ETag"], sp.get("ChecksumSHA256") or mine[n].checksum_sha256)
                    )
            queue.replace_parts(job.id, good)
            log.info("%s: resuming upload with %d of %d parts already in", job.key, len(good), len(plan))
            return job.upload_id, part_size, {p.number: p for p in good}
        if _already_there(t, job):  # completed, but the answer was lost (link cut, kill -9)
            log.info("%s: upload %s completed before its answer was lost; not sent again",
                     job.key, job.upload_id)
            queue.replace_parts(job.id, [])
            queue.set_upload_id(job.id, None)
            return None, 0, {}
        log.warning("%s: multipart upload %s is gone; starting again", job.key, job.upload_id)
        queue.add_stale(job.upload_id, job.key or "")
    upload_id, part_size = create(t, job, queue, unit_id)
    return upload_id, part_size, {}


def put_multipart(t: S3Target, job: Job, path: Path, queue: UploadQueue, unit_id: str,
                  prepared: Prepared | None = None) -> dict[str, Any]:
    """Resumable multipart upload: only the parts the server lacks are sent; returns Complete's answer.

    `prepared` (the job's first attempt after prepare()): its upload was just created and no part has
    gone, so no ListParts round trip, and its part checksums are known. A part that fails is retried by
    the caller from that part on (never from zero), more patiently and, after two failures in a row,
    paced just under the link rate."""
    checksums: dict[int, str] = {}
    if (prepared is not None and prepared.upload_id and prepared.upload_id == job.upload_id
            and prepared.part_size == job.part_size and not queue.parts(job.id)):
        upload_id, part_size, done = prepared.upload_id, prepared.part_size, {}
        checksums = prepared.checksums
    else:
        upload_id, part_size, done = _resume(t, job, queue, unit_id)
    if upload_id is None:
        return {}  # verify() checks the object with HEAD
    for number, offset, length in part_plan(job.size, part_size):
        if number in done:
            continue
        checksum = checksums.get(number) or _part_checksum(path, offset, length)
        failures = t.failures.get((job.id, number), 0)
        try:
            resp = _send(
                t,
                t.client.upload_part,
                path,
                offset,
                length,
                f"{job.key} part {number}",
                patience=failures,
                Bucket=t.bucket,
                Key=job.key,
                UploadId=upload_id,
                PartNumber=number,
                ChecksumAlgorithm="SHA256",
                ChecksumSHA256=checksum,
            )
        except Exception:
            t.failures[(job.id, number)] = failures + 1
            raise
        t.failures.pop((job.id, number), None)
        done[number] = Part(number, length, resp["ETag"], checksum)
        queue.add_part(job.id, done[number])
    parts = [
        {"PartNumber": p.number, "ETag": p.etag, "ChecksumSHA256": p.checksum_sha256}
        for p in sorted(done.values(), key=lambda p: p.number)
    ]
    return t.client.complete_multipart_upload(
        Bucket=t.bucket, Key=job.key, UploadId=upload_id, MultipartUpload={"Parts": parts}
    )
