"""Fixtures for cctv-provision: a moto S3+IAM server in its own process with IAM enforcement on
(only the provisioner's own user is made before), a migrated control room on SQLite with a council,
an Ansible inventory whose vault password is set, and a runner for the real command line.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import botocore.exceptions
import pytest
import requests
from sqlalchemy import select
from sqlalchemy.orm import Session

from agent.clock import ManualClock
from control_room import create_app, provision
from control_room.config import Settings as CRSettings
from control_room.db import get_engine, session_scope
from control_room.models import Unit
from provisioning.cli import main
from provisioning.inventory import encrypt
from tests.control_room.conftest import copy_migrated, migrated_sqlite  # noqa: F401 (a fixture)
from tests.servers import fresh_moto, worker_moto  # noqa: F401 (a fixture)

REGION = "eu-west-2"
BUCKET = "cctv-footage"
VAULT_PASSWORD = "correct horse battery staple"
pytest.importorskip("ansible", reason="ansible not installed (pip install -e '.[test]')")


@dataclass
class Store:
    url: str
    admin: dict[str, str]  # the provisioner's own IAM user (iam:* and s3:*)

    def iam(self) -> Any:
        return boto3.client("iam", endpoint_url=self.url, region_name="us-east-1", **self.admin)

    def s3(self, creds: dict[str, str] | None = None) -> Any:
        return boto3.client("s3", endpoint_url=self.url, region_name=REGION, **(creds or self.admin))

    def unit_users(self) -> list[str]:
        return sorted(u["UserName"] for u in self.iam().list_users()["Users"]
                      if u["UserName"].startswith("cctv-unit-"))


@pytest.fixture
def store(worker_moto: str) -> Iterator[Store]:  # noqa: F811
    """A moto process of this worker's alone (auth state is global in moto), reset to a fresh one's
    state; enforcement on after the provisioner exists."""
    url = fresh_moto(worker_moto)
    iam = boto3.client("iam", endpoint_url=url, region_name="us-east-1",
                       aws_access_key_id="testing", aws_secret_access_key="testing")
    iam.create_user(UserName="provisioner")
    iam.put_user_policy(UserName="provisioner", PolicyName="admin", PolicyDocument=json.dumps(
        {"Version": "2012-10-17",
         "Statement": [{"Effect": "Allow", "Action": ["iam:*", "s3:*"], "Resource": "*"}]}))
    key = iam.create_access_key(UserName="provisioner")["AccessKey"]
    requests.post(f"{url}/moto-api/reset-auth", data=b"0", timeout=5).raise_for_status()
    admin = {"aws_access_key_id": key["AccessKeyId"], "aws_secret_access_key": key["SecretAccessKey"]}
    # enforcement is on: a made-up key is refused
    bogus = boto3.client("iam", endpoint_url=url, region_name="us-east-1",
                         aws_access_key_id="AKIAFAKEFAKEFAKEFAKE", aws_secret_access_key="x")
    with pytest.raises(botocore.exceptions.ClientError):
        bogus.list_users()
    yield Store(url, admin)


@pytest.fixture
def control_room(tmp_path: Path, migrated_sqlite: Path) -> Iterator[Any]:  # noqa: F811
    """A migrated control room (Flask app, SQLite) with council 'herts'."""
    settings = CRSettings(instance_dir=tmp_path / "cr", database_url=f"sqlite:///{tmp_path / 'cr.db'}",
                          secret_key="test-secret-key-0123456789abcdef", sample_interval_s=0)
    copy_migrated(migrated_sqlite, settings.database_url)
    app = create_app(settings, migrate=True, clock=ManualClock(wall=time.time()))
    app.config["TESTING"] = True
    with session_scope(get_engine(app)) as s:
        provision.create_council(s, "herts", "Hertsmere Borough Council")
    yield app
    get_engine(app).dispose()


def cr_units(app: Any) -> list[str]:
    with Session(get_engine(app)) as s:
        return list(s.scalars(select(Unit.unit_id).order_by(Unit.unit_id)))


@pytest.fixture
def inventory(tmp_path: Path) -> Path:
    """An inventory with a group vault (so a wrong password is detectable)."""
    inv = tmp_path / "inventory"
    (inv / "group_vars" / "all").mkdir(parents=True)
    (inv / "group_vars" / "all" / "vault.yml").write_bytes(
        encrypt(VAULT_PASSWORD, {"vault_cctv_fleet_note": "opened with the fleet's vault password"}))
    return inv


def snapshot_tree(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@dataclass
class Result:
    code: int
    out: str
    err: str


@pytest.fixture
def provision_env(tmp_path: Path, store: Store, control_room: Any, inventory: Path,
                  monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    pw = tmp_path / "vault-password"
    pw.write_text(VAULT_PASSWORD + "\n")
    pw.chmod(0o600)
    env = {
        "AWS_ACCESS_KEY_ID": store.admin["aws_access_key_id"],
        "AWS_SECRET_ACCESS_KEY": store.admin["aws_secret_access_key"],
        "CCTV_PROVISION_S3_ENDPOINT_URL": store.url,
        "CCTV_PROVISION_BUCKET": BUCKET,
        "CCTV_PROVISION_REGION": REGION,
        "CCTV_PROVISION_INVENTORY": str(inventory),
        "CCTV_PROVISION_CONTROL_ROOM_URL": "http://127.0.0.1:8080",
        "CCTV_PROVISION_RETENTION_DAYS": "28",
        "CONTROL_ROOM_DATABASE_URL": control_room.config["SETTINGS"].resolved_database_url(),
        "CCTV_VAULT_PASSWORD_FILE": str(pw),
    }
    for k in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "CCTV_VAULT_PASSWORD"):
        monkeypatch.delenv(k, raising=False)
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    return env


@pytest.fixture
def cli(provision_env: dict[str, str], capsys: pytest.CaptureFixture[str]) -> Callable[..., Result]:
    """Run cctv-provision in this process (the same main() the console script calls)."""

    def run(*argv: str) -> Result:
        capsys.readouterr()
        code = main(list(argv))
        out, err = capsys.readouterr()
        return Result(code, out, err)

    return run
