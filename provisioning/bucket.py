"""`cctv-provision bucket setup`: the central footage bucket created, or checked and corrected:
versioning, Object Lock, default encryption, public access blocked, and a lifecycle that aborts
stale multipart uploads and expires footage after the retention period (held objects stay: Object
Lock refuses to delete a version under legal hold or retention).
"""

from __future__ import annotations

from typing import Any

import botocore.exceptions

from provisioning.settings import ProvisionError, Settings
from provisioning.storage import BOTO_ERRORS, describe, s3_client

ABORT_MULTIPART_DAYS = 2
RULE_ID = "cctv-retention"
PUBLIC_BLOCK = {"BlockPublicAcls": True, "IgnorePublicAcls": True, "BlockPublicPolicy": True,
                "RestrictPublicBuckets": True}
ENCRYPTION = {"Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"},
                         "BucketKeyEnabled": True}]}


def lifecycle(settings: Settings) -> dict[str, Any]:
    prefix = f"{settings.prefix}/" if settings.prefix else ""
    return {"Rules": [{
        "ID": RULE_ID,
        "Filter": {"Prefix": prefix},
        "Status": "Enabled",
        "Expiration": {"Days": settings.retention_days},
        "NoncurrentVersionExpiration": {"NoncurrentDays": 1},
        "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": ABORT_MULTIPART_DAYS},
    }]}


def _code(exc: botocore.exceptions.ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def setup(settings: Settings, s3: Any | None = None) -> list[tuple[str, str]]:
    """Bring the bucket to the wanted state; returns (item, 'ok' | 'set' | 'created') per item."""
    s3 = s3 or s3_client(settings)
    bucket = settings.bucket
    done: list[tuple[str, str]] = []
    try:
        try:
            s3.head_bucket(Bucket=bucket)
            done.append(("bucket", "ok"))
        except botocore.exceptions.ClientError as exc:
            if _code(exc) not in ("404", "NoSuchBucket", "NotFound"):
                raise
            kwargs: dict[str, Any] = {"Bucket": bucket, "ObjectLockEnabledForBucket": True}
            if settings.region != "us-east-1":
                kwargs["CreateBucketConfiguration"] = {"LocationConstraint": settings.region}
            s3.create_bucket(**kwargs)
            done.append(("bucket", "created"))

        versioning = s3.get_bucket_versioning(Bucket=bucket).get("Status")
        if versioning != "Enabled":
            s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
        done.append(("versioning", "ok" if versioning == "Enabled" else "set"))

        try:
            lock = s3.get_object_lock_configuration(Bucket=bucket)["ObjectLockConfiguration"]
            lock_on = lock.get("ObjectLockEnabled") == "Enabled"
        except botocore.exceptions.ClientError as exc:
            if _code(exc) != "ObjectLockConfigurationNotFoundError":
                raise
            lock_on = False
        if not lock_on:
            s3.put_object_lock_configuration(Bucket=bucket,
                                             ObjectLockConfiguration={"ObjectLockEnabled": "Enabled"})
        done.append(("object lock", "ok" if lock_on else "set"))

        done.append(("default encryption", _ensure(
            lambda: s3.get_bucket_encryption(Bucket=bucket)["ServerSideEncryptionConfiguration"],
            lambda: s3.put_bucket_encryption(Bucket=bucket, ServerSideEncryptionConfiguration=ENCRYPTION),
            lambda cur: any(r.get("ApplyServerSideEncryptionByDefault", {}).get("SSEAlgorithm")
                            in ("AES256", "aws:kms") for r in cur.get("Rules", [])),
            "ServerSideEncryptionConfigurationNotFoundError")))
        done.append(("public access blocked", _ensure(
            lambda: s3.get_public_access_block(Bucket=bucket)["PublicAccessBlockConfiguration"],
            lambda: s3.put_public_access_block(Bucket=bucket, PublicAccessBlockConfiguration=PUBLIC_BLOCK),
            lambda cur: all(cur.get(k) for k in PUBLIC_BLOCK), "NoSuchPublicAccessBlockConfiguration")))
        wanted = lifecycle(settings)
        done.append((f"lifecycle (expire after {settings.retention_days} d, abort uploads after "
                     f"{ABORT_MULTIPART_DAYS} d)", _ensure(
            lambda: s3.get_bucket_lifecycle_configuration(Bucket=bucket),
            lambda: s3.put_bucket_lifecycle_configuration(Bucket=bucket, LifecycleConfiguration=wanted),
            lambda cur: _same_rule(cur, wanted["Rules"][0]), "NoSuchLifecycleConfiguration")))
    except BOTO_ERRORS as exc:
        raise describe(exc, f"bucket {bucket}") from None
    return done


def _ensure(get: Any, put: Any, good: Any, missing_code: str) -> str:
    try:
        current = get()
    except botocore.exceptions.ClientError as exc:
        if _code(exc) != missing_code:
            raise
        current = {}
    if good(current):
        return "ok"
    put()
    return "set"


def _same_rule(current: dict[str, Any], want: dict[str, Any]) -> bool:
    for rule in current.get("Rules", []):
        if rule.get("ID") == want["ID"]:
            return (rule.get("Status") == "Enabled"
                    and rule.get("Expiration", {}).get("Days") == want["Expiration"]["Days"]
                    and rule.get("AbortIncompleteMultipartUpload", {}).get("DaysAfterInitiation")
                    == want["AbortIncompleteMultipartUpload"]["DaysAfterInitiation"]
                    and rule.get("Filter", {}).get("Prefix", "") == want["Filter"]["Prefix"])
    return False


__all__ = ["setup", "lifecycle", "ProvisionError"]
