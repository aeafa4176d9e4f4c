"""S3 side of the upload lanes: a botocore client from cfg.upload, single PUTs, verification; the
resumable multipart upload is multipart.py's.

Errors are sorted here into transport (wait and retry, never give up), definitive refusals (loud, slow
retry) and clock skew (the signing clock is corrected from the server's Date header, then retried).
"""

from __future__ import annotations

import base64
import hashlib
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any

import botocore.auth
import botocore.exceptions
from botocore.auth import SIGV4_TIMESTAMP, S3SigV4Auth
from botocore.config import Config as BotoConfig

from agent.clock import Clock
from agent.config import UploadConfig
from agent.errors import PermanentError, TransientError
from agent.upload.botodata import lean_session
from agent.upload.budget import Meter, MeteredReader, TokenBucket, request_bytes
from agent.upload.link import LinkWatch, install, long_read_timeout
from agent.upload.queue import Job, UploadQueue
from protocol.times import parse_aware

log = logging.getLogger(__name__)

MIB = 1024 * 1024
SIGNER = "cctv-s3v4"
SKEW_CODES = {"RequestTimeTooSkewed", "RequestExpired", "SignatureDoesNotMatch-skew"}
TRANSIENT_CODES = {"RequestTimeout", "SlowDown", "InternalError", "ServiceUnavailable", "Throttling"}


class SkewError(TransientError):
    """The server refused our request time; the signing clock has been corrected, retry at once."""


class ClockOffset:
    """Seconds to add to the unit clock when signing (learnt from a RequestTimeTooSkewed answer)."""

    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self.offset_s = 0.0

    def now(self) -> float:
        with self._lock:
            return self._clock.time() + self.offset_s

    def correct(self, server_time: float) -> float:
        with self._lock:
            self.offset_s = server_time - self._clock.time()
            return self.offset_s


class _OffsetSigV4(S3SigV4Auth):
    """S3 SigV4 signing with the request time taken from the unit's corrected clock."""

    def add_auth(self, request: Any) -> None:
        if self.credentials is None:
            raise botocore.exceptions.NoCredentialsError()
        now: Callable[[], float] = request.context["cctv_now"]
        when = datetime.fromtimestamp(now(), UTC).replace(tzinfo=None)
        request.context["timestamp"] = when.strftime(SIGV4_TIMESTAMP)
        self._modify_request_before_signing(request)
        canonical = self.canonical_request(request)
        self._inject_signature_to_request(
            request, self.signature(self.string_to_sign(request, canonical), request)
        )


botocore.auth.AUTH_TYPE_MAPS.setdefault(SIGNER, _OffsetSigV4)  # a constant registration, done once


_SESSIONS: dict[tuple[str | None, str | None, str], Any] = {}
_SESSIONS_LOCK = threading.Lock()


def _session(cfg: UploadConfig) -> tuple[Any, tuple[str | None, str | None, str]]:
    """One botocore session per set of credentials, shared by the lanes: each new session parses the
    S3 model and endpoint rules again. Lean model data (botodata.py), and botocore without boto3,
    which would add boto3, s3transfer and multiprocessing for nothing the agent calls. Clients are
    thread-safe; making them is not, hence the lock (held by make_client while it makes one)."""
    key = (cfg.access_key_id.get_secret_value() if cfg.access_key_id else None,
           cfg.secret_access_key.get_secret_value() if cfg.secret_access_key else None, cfg.region)
    session = _SESSIONS.get(key)
    if session is None:
        session = _SESSIONS[key] = lean_session()
    return session, key


def make_client(cfg: UploadConfig, offset: ClockOffset, meter: Meter | None = None) -> Any:
    """botocore S3 client: TLS verified (optionally against cfg.ca_bundle), no hidden retries;
    requests without a body time out after cfg.timeout_s, bodies are watched for progress (link.py)."""
    with _SESSIONS_LOCK:
        session, (key_id, secret, region) = _session(cfg)
        client = session.create_client(
            "s3",
            region_name=region,
            aws_access_key_id=key_id,  # None: botocore's usual chain (environment, files, role)
            aws_secret_access_key=secret,
            endpoint_url=cfg.endpoint_url,
            verify=str(cfg.ca_bundle) if cfg.ca_bundle else True,
            config=BotoConfig(
                connect_timeout=cfg.timeout_s,
                read_timeout=cfg.timeout_s,
                retries={"total_max_attempts": 1},
                tcp_keepalive=True,
                request_checksum_calculation="when_required",
                response_checksum_validation="when_required",
                s3={"payload_signing_enabled": False,
                    "addressing_style": "path" if cfg.endpoint_url else "auto"},
            ),
        )
    client.meta.events.register(
        "choose-signer.s3",
        lambda signature_version, **_: SIGNER if signature_version in ("v4", "s3v4") else None,
    )
    client.meta.events.register(
        "before-sign.s3", lambda request, **_: request.context.update(cctv_now=offset.now)
    )
    for op in ("PutObject", "UploadPart"):  # bodies: the link watch, not a fixed read timeout
        client.meta.events.register(f"before-call.s3.{op}", long_read_timeout)
    if meter is not None:  # request lines, headers and small bodies count against the budget too
        client.meta.events.register("before-send.s3", lambda request, **_: meter.add(request_bytes(request)))
    install(client)
    return client


def classify(err: Exception, offset: ClockOffset) -> Exception:
    """Map a boto3 failure to TransientError (wait), SkewError (corrected) or PermanentError (refused)."""
    if isinstance(err, botocore.exceptions.ClientError):
        info = err.response.get("Error", {})
        code = str(info.get("Code", ""))
        status = int(err.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)
        msg = f"{code or status}: {info.get('Message', '')}".strip()
        if code in SKEW_CODES:
            date = err.response.get("ResponseMetadata", {}).get("HTTPHeaders", {}).get("date")
            server_time = info.get("ServerTime")
            try:
                when = (
                    parse_aware(server_time)
                    if server_time
                    else parsedate_to_datetime(date)
                )
            except (TypeError, ValueError):
                return TransientError(f"{msg} (no server time to correct from)")
            fixed = offset.correct(when.timestamp())
            log.warning("S3 says our clock is skewed: signing clock corrected by %+.1f s", fixed)
            return SkewError(msg)
        if status >= 500 or code in TRANSIENT_CODES or status in (408, 429):
            return TransientError(msg)
        return PermanentError(msg)
    if isinstance(err, (botocore.exceptions.NoCredentialsError, botocore.exceptions.ParamValidationError)):
        return PermanentError(str(err))
    if isinstance(err, (botocore.exceptions.BotoCoreError, OSError)):
        return TransientError(f"{type(err).__name__}: {err}")
    return err


def b64_sha256(data: bytes) -> str:
    return base64.b64encode(hashlib.sha256(data).digest()).decode()


def b64_of_hex(hex_digest: str) -> str:
    return base64.b64encode(bytes.fromhex(hex_digest)).decode()


@dataclass
class S3Target:
    client: Any
    bucket: str
    bandwidth: TokenBucket
    meter: Meter
    part_size: int  # the largest part; a new upload's parts follow the measured link (link.py)
    threshold: int
    watch: LinkWatch
    stall_s: float
    failures: dict[tuple[int, int], int] = field(default_factory=dict)  # (job, part) -> failures in a row


def _send(t: S3Target, call: Callable[..., dict[str, Any]], path: Path, offset: int, length: int,
          what: str, patience: int = 0, **kwargs: Any) -> dict[str, Any]:
    """One request with a body read from the file window, watched for progress by the link watch.

    `patience` > 0 (a part that failed before): the stall time is doubled per failure and, from the
    second, the body is paced just under the measured link rate so no queue builds up on the way."""
    buckets: tuple[TokenBucket, ...] = (t.bandwidth,)
    rate = t.watch.rate.bytes_s
    if patience >= 2 and rate:
        buckets += (TokenBucket(0.9 * rate, t.bandwidth.clock, t.bandwidth.stop),)
    stall_s = t.stall_s * 2 ** min(patience, 4)
    with t.watch.watch(length, stall_s, what) as transfer:
        clock = t.bandwidth.clock

        def on_bytes(n: int) -> None:
            transfer.on_sent(n, clock.monotonic())
            t.meter.add(n)

        body = MeteredReader(path, offset, length, buckets, on_bytes)
        try:
            resp = call(Body=body, ContentLength=length, **kwargs)
        except Exception:
            if transfer.aborted:
                raise TransientError(f"{what}: {transfer.aborted}") from None
            raise
        finally:
            body.close()
            t.meter.flush()
        t.watch.done(transfer)
        return resp


def object_metadata(job: Job, unit_id: str) -> dict[str, str]:
    return {"sha256": job.sha256 or "", "event-id": job.event_id, "unit-id": unit_id, "role": job.role}


def put_small(t: S3Target, job: Job, path: Path, unit_id: str) -> dict[str, Any]:
    """One PUT with the file's SHA-256 as S3 checksum and in metadata; returns the response."""
    return _send(
        t,
        t.client.put_object,
        path,
        0,
        job.size,
        job.key or "",
        Bucket=t.bucket,
        Key=job.key,
        ContentType=job.content_type or "application/octet-stream",
        ChecksumAlgorithm="SHA256",
        ChecksumSHA256=b64_of_hex(job.sha256 or ""),
        Metadata=object_metadata(job, unit_id),
    )


def verify(t: S3Target, job: Job, written: dict[str, Any], can_head: list[bool]) -> str:
    """HEAD the object: size, SHA-256 metadata and (single PUT) S3 checksum must match what we sent.

    A least-privilege unit may not be allowed to HEAD (s3:GetObject): then the write's own answer,
    which S3 only gives after checking our SHA-256, is the verification; returns how it was verified.
    """
    sent = b64_of_hex(job.sha256 or "")
    answer = written.get("ChecksumSHA256")
    if answer and "-" not in answer and job.size < t.threshold and answer != sent:
        raise TransientError(f"{job.key}: S3 answered checksum {answer}, we sent {sent}")
    if not can_head[0]:
        return "write-response"
    try:
        head = t.client.head_object(Bucket=t.bucket, Key=job.key, ChecksumMode="ENABLED")
    except botocore.exceptions.ClientError as err:
        if err.response.get("ResponseMetadata", {}).get("HTTPStatusCode") == 403:
            log.info("HEAD is not allowed by this unit's policy: verifying by the write responses")
            can_head[0] = False
            return "write-response"
        raise
    problems = []
    if head["ContentLength"] != job.size:
        problems.append(f"size {head['ContentLength']} != {job.size}")
    if head.get("Metadata", {}).get("sha256") != job.sha256:
        problems.append("sha256 metadata differs")
    checksum = head.get("ChecksumSHA256")
    if checksum and "-" not in checksum and job.size < t.threshold and checksum != sent:
        problems.append("S3 checksum differs")
    if problems:
        raise TransientError(f"{job.key}: verification failed: {', '.join(problems)}")
    return "head"


def abort_stale(t: S3Target, queue: UploadQueue) -> int:
    """Abort multipart uploads this unit started and abandoned (recorded in upload_stale)."""
    n = 0
    for upload_id, key in queue.stale():
        try:
            t.client.abort_multipart_upload(Bucket=t.bucket, Key=key, UploadId=upload_id)
        except botocore.exceptions.ClientError as err:
            if err.response.get("Error", {}).get("Code") not in ("NoSuchUpload", "404"):
                log.warning("cannot abort stale upload of %s: %s", key, err)
                continue
        queue.drop_stale(upload_id)
        n += 1
    return n
