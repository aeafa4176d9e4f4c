"""`cctv-provision bucket setup` against the IAM-enforcing S3 server: the bucket created with
versioning, Object Lock, default encryption, public access blocked and the retention lifecycle;
a second run changes nothing; a bucket missing settings is corrected.
"""

from __future__ import annotations

from typing import Any

from tests.provisioning.conftest import BUCKET, REGION, Store


def test_bucket_setup_creates_checks_and_corrects(cli: Any, store: Store) -> None:
    first = cli("bucket", "setup")
    assert first.code == 0, first.err
    assert f"{BUCKET}: bucket: created" in first.out
    s3 = store.s3()
    assert s3.get_bucket_versioning(Bucket=BUCKET)["Status"] == "Enabled"
    assert s3.get_object_lock_configuration(Bucket=BUCKET)["ObjectLockConfiguration"]["ObjectLockEnabled"] \
        == "Enabled"
    rules = s3.get_bucket_encryption(Bucket=BUCKET)["ServerSideEncryptionConfiguration"]["Rules"]
    assert rules[0]["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"] == "AES256"
    block = s3.get_public_access_block(Bucket=BUCKET)["PublicAccessBlockConfiguration"]
    assert all(block.values()) and len(block) == 4
    rule = s3.get_bucket_lifecycle_configuration(Bucket=BUCKET)["Rules"][0]
    assert rule["Expiration"]["Days"] == 28 and rule["Filter"]["Prefix"] == "units/"
    assert rule["AbortIncompleteMultipartUpload"]["DaysAfterInitiation"] == 2

    second = cli("bucket", "setup")
    assert second.code == 0 and "created" not in second.out and " set" not in second.out, second.out
    assert second.out.count(": ok") == 6

    s3.delete_bucket_lifecycle(Bucket=BUCKET)
    s3.delete_public_access_block(Bucket=BUCKET)
    third = cli("bucket", "setup", "--retention-days", "31")
    assert third.code == 0 and third.out.count(": set") == 2, third.out
    assert s3.get_bucket_lifecycle_configuration(Bucket=BUCKET)["Rules"][0]["Expiration"]["Days"] == 31


def test_existing_bucket_without_versioning_or_lock_is_brought_into_line(cli: Any, store: Store) -> None:
    store.s3().create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": REGION})
    done = cli("bucket", "setup")
    assert done.code == 0, done.err
    assert "versioning: set" in done.out and "object lock: set" in done.out
    assert store.s3().get_bucket_versioning(Bucket=BUCKET)["Status"] == "Enabled"


def test_bad_bucket_settings(cli: Any, monkeypatch: Any) -> None:
    bad = cli("bucket", "setup", "--bucket", "Not_A_Bucket")
    assert bad.code == 2 and "bucket" in bad.err and len(bad.err.strip().splitlines()) == 1
    bad = cli("bucket", "setup", "--retention-days", "0")
    assert bad.code == 2 and "retention" in bad.err
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "wrong")
    bad = cli("bucket", "setup")
    assert bad.code == 2 and len(bad.err.strip().splitlines()) == 1, bad.err
