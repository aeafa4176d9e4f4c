"""What `cctv-provision` needs to reach: the S3/IAM endpoints, the bucket, the control room's database,
the Ansible inventory and its vault password; read once from the environment and the command line.

Administrator credentials come from boto3's usual chain (AWS_* variables, ~/.aws, an instance role);
the vault password from a file or an environment variable, never from the command line.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from control_room import names

REPO = Path(__file__).resolve().parents[1]


class ProvisionError(Exception):
    """An administrator's request that cannot be carried out: one line, exit status 2."""


@dataclass(frozen=True)
class Settings:
    inventory: Path
    bucket: str
    prefix: str
    region: str
    s3_endpoint_url: str | None
    iam_endpoint_url: str | None
    database_url: str | None
    vault_password: str | None
    control_room_url: str
    retention_days: int
    timeout_s: float = 10.0

    def require_vault_password(self) -> str:
        if not self.vault_password:
            raise ProvisionError("no vault password: set CCTV_VAULT_PASSWORD_FILE (a 0600 file) or "
                                 "CCTV_VAULT_PASSWORD")
        return self.vault_password


def _vault_password(env: Mapping[str, str], password_file: str | None) -> str | None:
    path = password_file or env.get("CCTV_VAULT_PASSWORD_FILE") or env.get("ANSIBLE_VAULT_PASSWORD_FILE")
    if path:
        p = Path(path)
        try:
            if p.stat().st_mode & 0o077:
                raise ProvisionError(f"vault password file {p} is readable by others: chmod 600 it")
            text = p.read_text(encoding="utf-8")
        except OSError as exc:
            raise ProvisionError(f"cannot read vault password file {p}: {exc.strerror}") from None
        pw = text.splitlines()[0].strip() if text.strip() else ""
        if not pw:
            raise ProvisionError(f"vault password file {p} is empty")
        return pw
    return env.get("CCTV_VAULT_PASSWORD") or None


def load(env: Mapping[str, str] | None = None, **given: str | None) -> Settings:
    """Settings from CCTV_PROVISION_* variables, overridden by non-empty command-line values."""
    env = os.environ if env is None else env

    def get(key: str, default: str | None = None) -> str | None:
        value = given.get(key)
        if value:
            return value
        return env.get(f"CCTV_PROVISION_{key.upper()}") or default

    bucket = get("bucket", "cctv-footage") or ""
    names.check(names.S3_BUCKET, bucket, "bucket")
    prefix = (get("prefix", "units") or "").strip("/")
    if prefix and not re.fullmatch(r"[a-z0-9][a-z0-9-]{0,62}", prefix):
        raise ProvisionError(f"prefix {prefix!r} is not allowed (lower-case letters, digits, '-')")
    try:
        retention = int(get("retention_days", "31") or "31")
    except ValueError:
        raise ProvisionError("retention days must be a whole number") from None
    if not 1 <= retention <= 3650:
        raise ProvisionError(f"retention days {retention} out of range (1-3650)")
    s3 = get("s3_endpoint_url")
    url = get("control_room_url", "https://cctv.example.gov.uk") or ""
    if not url.startswith(("https://", "http://127.0.0.1", "http://localhost")):
        raise ProvisionError(f"control room URL {url!r} must be https:// (plain http only to localhost)")
    return Settings(
        inventory=Path(get("inventory", str(REPO / "ansible" / "inventory")) or ""),
        bucket=bucket,
        prefix=prefix,
        region=get("region", "eu-west-2") or "eu-west-2",
        s3_endpoint_url=s3,
        iam_endpoint_url=get("iam_endpoint_url") or s3,
        database_url=get("database_url") or env.get("CONTROL_ROOM_DATABASE_URL"),
        vault_password=_vault_password(env, given.get("vault_password_file")),
        control_room_url=url.rstrip("/"),
        retention_days=retention,
    )
