"""Least-privilege S3 access for one unit: the IAM policy provisioning attaches to the unit's user.

The unit may only write objects (and resume or abort its multipart uploads) under its own prefix; it
cannot read, list or delete anything, so a stolen unit can neither fetch nor destroy footage.
"""

from __future__ import annotations

from typing import Any

from protocol.ids import unit_key_prefix as unit_prefix  # `<prefix>/<unit-id>/`, where a unit may write

__all__ = ["unit_policy", "unit_prefix"]


def unit_policy(bucket: str, prefix: str, unit_id: str) -> dict[str, Any]:
    """IAM policy document for a unit's user (CreateMultipartUpload/UploadPart/Complete are s3:PutObject)."""
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "WriteOwnPrefixOnly",
                "Effect": "Allow",
                "Action": ["s3:PutObject", "s3:ListMultipartUploadParts", "s3:AbortMultipartUpload"],
                "Resource": f"arn:aws:s3:::{bucket}/{unit_prefix(prefix, unit_id)}*",
            }
        ],
    }
