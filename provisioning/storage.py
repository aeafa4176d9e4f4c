"""A unit's storage identity through the IAM API (AWS, moto, Ceph RGW): an IAM user per unit with
the least-privilege policy of provisioning.iam, its access keys, and cutting them off.

Every call is bounded (connect/read timeouts, two attempts), so an unreachable store fails in seconds
with one clear error instead of hanging `unit add` with half its work done.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import boto3
import botocore.exceptions
import botocore.loaders
import botocore.session
from botocore.config import Config as BotoConfig

from provisioning.iam import unit_policy
from provisioning.settings import ProvisionError, Settings

USER_PATH = "/cctv-units/"
POLICY_NAME = "cctv-unit-upload"
DENY_POLICY_NAME = "cctv-unit-stolen-deny-all"
DENY_ALL = {"Version": "2012-10-17",
            "Statement": [{"Sid": "StolenUnit", "Effect": "Deny", "Action": "*", "Resource": "*"}]}


def user_name(unit_id: str) -> str:
    return f"cctv-unit-{unit_id}"


@dataclass(frozen=True)
class AccessKey:
    access_key_id: str
    secret_access_key: str = ""  # only known when just created
    status: str = "Active"
    created_at: datetime | None = None


class StorageError(ProvisionError):
    """The store refused or could not be reached."""


def _boto_config(settings: Settings) -> BotoConfig:
    return BotoConfig(connect_timeout=settings.timeout_s, read_timeout=settings.timeout_s,
                      retries={"max_attempts": 2, "mode": "standard"})


_LOADER_LOCK = threading.Lock()
_loader: botocore.loaders.Loader | None = None


def _session() -> boto3.session.Session:
    """A new session each time: credentials are resolved now, not cached from an earlier call. Its data
    loader (the parsed service models and endpoint data, cached inside it) is the first session's: a
    new one parsed the IAM or S3 model and the endpoint data again, 0.1-0.2 s of CPU a client."""
    global _loader
    core = botocore.session.get_session()
    with _LOADER_LOCK:
        if _loader is None:
            _loader = core.get_component("data_loader")
        else:
            core.register_component("data_loader", _loader)
        session = boto3.session.Session(botocore_session=core)
        paths = _loader.search_paths  # boto3 appends its data folder to the loader's list each time
        paths[:] = list(dict.fromkeys(paths))
    return session


def iam_client(settings: Settings) -> Any:
    return _session().client("iam", endpoint_url=settings.iam_endpoint_url, region_name="us-east-1",
                             config=_boto_config(settings))


def s3_client(settings: Settings) -> Any:
    return _session().client("s3", endpoint_url=settings.s3_endpoint_url, region_name=settings.region,
                             config=_boto_config(settings))


def describe(exc: Exception, what: str) -> StorageError:
    """One line for a boto error (never the credentials)."""
    if isinstance(exc, botocore.exceptions.ClientError):
        err = exc.response.get("Error", {})
        return StorageError(f"{what}: {err.get('Code', 'error')}: {err.get('Message', '')}".rstrip(": "))
    if isinstance(exc, botocore.exceptions.NoCredentialsError):
        return StorageError(f"{what}: no administrator credentials (set AWS_ACCESS_KEY_ID/"
                            "AWS_SECRET_ACCESS_KEY or AWS_PROFILE)")
    if isinstance(exc, botocore.exceptions.EndpointConnectionError | botocore.exceptions.ConnectTimeoutError
                  | botocore.exceptions.ReadTimeoutError):
        return StorageError(f"{what}: storage unreachable ({exc})")
    return StorageError(f"{what}: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}")


BOTO_ERRORS = (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError)


class UnitStorage:
    """IAM operations on one store, with the administrator's credentials."""

    def __init__(self, settings: Settings, iam: Any | None = None) -> None:
        self.settings = settings
        self.iam = iam or iam_client(settings)

    def user_exists(self, unit_id: str) -> bool:
        try:
            self.iam.get_user(UserName=user_name(unit_id))
            return True
        except botocore.exceptions.ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "NoSuchEntity":
                return False
            raise describe(exc, "checking the storage user") from None
        except BOTO_ERRORS as exc:
            raise describe(exc, "checking the storage user") from None

    def create_unit_user(self, unit_id: str, council: str) -> AccessKey:
        """User, upload-only policy, one access key. On failure nothing of it is left behind."""
        name = user_name(unit_id)
        policy = unit_policy(self.settings.bucket, self.settings.prefix, unit_id)
        created = False
        try:
            self.iam.create_user(UserName=name, Path=USER_PATH,
                                 Tags=[{"Key": "cctv-council", "Value": council},
                                       {"Key": "cctv-unit", "Value": unit_id}])
            created = True
            self.iam.put_user_policy(UserName=name, PolicyName=POLICY_NAME, PolicyDocument=json.dumps(policy))
            return self.create_key(unit_id)
        except BOTO_ERRORS as exc:
            if created:
                self.delete_unit_user(unit_id, quiet=True)
            raise describe(exc, "creating the storage user") from None

    def create_key(self, unit_id: str) -> AccessKey:
        try:
            key = self.iam.create_access_key(UserName=user_name(unit_id))["AccessKey"]
        except BOTO_ERRORS as exc:
            raise describe(exc, "creating an access key") from None
        return AccessKey(key["AccessKeyId"], key["SecretAccessKey"], key.get("Status", "Active"),
                         key.get("CreateDate"))

    def keys(self, unit_id: str) -> list[AccessKey]:
        """The user's keys, oldest first; [] when the user is gone."""
        try:
            found = self.iam.list_access_keys(UserName=user_name(unit_id))["AccessKeyMetadata"]
        except botocore.exceptions.ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "NoSuchEntity":
                return []
            raise describe(exc, "listing access keys") from None
        except BOTO_ERRORS as exc:
            raise describe(exc, "listing access keys") from None
        keys = [AccessKey(k["AccessKeyId"], "", k["Status"], k.get("CreateDate")) for k in found]
        return sorted(keys, key=lambda k: (k.created_at is None, k.created_at or 0))

    def key_last_used(self, access_key_id: str) -> datetime | None:
        try:
            info = self.iam.get_access_key_last_used(AccessKeyId=access_key_id)["AccessKeyLastUsed"]
        except BOTO_ERRORS as exc:
            raise describe(exc, "asking when the key was last used") from None
        return info.get("LastUsedDate")

    def delete_key(self, unit_id: str, access_key_id: str) -> None:
        try:
            self.iam.delete_access_key(UserName=user_name(unit_id), AccessKeyId=access_key_id)
        except BOTO_ERRORS as exc:
            raise describe(exc, "deleting an access key") from None

    def cut_off(self, unit_id: str) -> int:
        """Stolen: a deny-all policy first (effective at once, whatever the key), then every key
        deleted. The user stays as a record. Returns how many keys were deleted."""
        name = user_name(unit_id)
        try:
            self.iam.put_user_policy(UserName=name, PolicyName=DENY_POLICY_NAME,
                                     PolicyDocument=json.dumps(DENY_ALL))
            keys = self.keys(unit_id)
            for key in keys:
                self.iam.delete_access_key(UserName=name, AccessKeyId=key.access_key_id)
        except BOTO_ERRORS as exc:
            raise describe(exc, "cutting off the storage user") from None
        return len(keys)

    def delete_unit_user(self, unit_id: str, quiet: bool = False) -> None:
        """Keys, inline policies, then the user (IAM refuses to delete a user that still has them)."""
        name = user_name(unit_id)
        try:
            for key in self.keys(unit_id):
                self.iam.delete_access_key(UserName=name, AccessKeyId=key.access_key_id)
            for policy in self.iam.list_user_policies(UserName=name).get("PolicyNames", []):
                self.iam.delete_user_policy(UserName=name, PolicyName=policy)
            self.iam.delete_user(UserName=name)
        except botocore.exceptions.ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "NoSuchEntity":
                return
            if not quiet:
                raise describe(exc, "deleting the storage user") from None
        except (*BOTO_ERRORS, StorageError) as exc:
            if not quiet:
                raise exc if isinstance(exc, StorageError) else describe(exc, "deleting the storage user") \
                    from None
