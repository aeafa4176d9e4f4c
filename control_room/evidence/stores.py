"""Police stores: a force's own S3-compatible destination, configured once by an administrator
(`cctv-control-room add-police-store`); the secret key stays in a 0600 file, never in the database.

Used by the CLI and by evidence.delivery when a package is pushed.
"""

from __future__ import annotations

import argparse
import re
import stat
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from control_room.errors import ControlRoomError
from control_room.evidence.models import PoliceStore
from control_room.models import Council

NAME_RE = re.compile(r"^[a-z0-9][a-z0-9-]{0,99}$")
BUCKET_RE = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")


class StoreError(ControlRoomError, ValueError):
    """The store's settings are not usable; the message names the field."""


def _endpoint_ok(url: str) -> bool:
    from urllib.parse import urlsplit

    if not url or url.startswith("https://"):
        return True
    parts = urlsplit(url)  # plain http only to this machine (tests, a local proxy), as for units
    return (
        parts.scheme == "http"
        and parts.hostname in ("127.0.0.1", "localhost", "::1")
        and "@" not in parts.netloc
    )


def add_store(
    db: Session,
    name: str,
    force: str,
    bucket: str,
    access_key_id: str,
    secret_file: Path,
    endpoint_url: str = "",
    region: str = "eu-west-2",
    prefix: str = "",
    council: str | None = None,
    ca_bundle: Path | None = None,
) -> PoliceStore:
    if not NAME_RE.match(name):
        raise StoreError(f"store name {name!r}: lower-case letters, digits and '-'")
    if db.scalar(select(PoliceStore).where(PoliceStore.name == name)) is not None:
        raise StoreError(f"store {name!r} already exists")
    if not force.strip():
        raise StoreError("force is required")
    if not BUCKET_RE.match(bucket):
        raise StoreError(f"bucket {bucket!r} is not a valid S3 bucket name")
    if not _endpoint_ok(endpoint_url):
        raise StoreError("endpoint must be an https:// URL (plain http only to 127.0.0.1/localhost)")
    if not access_key_id:
        raise StoreError("access key id is required")
    if not secret_file.is_file():
        raise StoreError(f"secret file {secret_file} does not exist")
    if stat.S_IMODE(secret_file.stat().st_mode) & 0o077:
        raise StoreError(f"secret file {secret_file} is readable by others: chmod 600")
    if ca_bundle is not None and not ca_bundle.is_file():
        raise StoreError(f"CA bundle {ca_bundle} does not exist")
    council_id = None
    if council:
        council_id = db.scalar(select(Council.id).where(Council.slug == council))
        if council_id is None:
            raise StoreError(f"unknown council {council!r}")
    store = PoliceStore(
        name=name,
        force=force.strip(),
        council_id=council_id,
        kind="s3",
        endpoint_url=endpoint_url,
        region=region,
        bucket=bucket,
        prefix=prefix.strip("/"),
        access_key_id=access_key_id,
        secret_file=str(secret_file.resolve()),
        ca_bundle=str(ca_bundle.resolve()) if ca_bundle else "",
    )
    db.add(store)
    db.flush()
    return store


ARGUMENTS: list[tuple[tuple[str, ...], dict[str, Any]]] = [
    (("name",), {"help": "short name, e.g. herts-police"}),
    (("--force",), {"required": True, "help": "the police force, as shown to staff"}),
    (("--bucket",), {"required": True}),
    (("--access-key-id",), {"required": True}),
    (("--secret-file",), {"required": True, "type": Path, "help": "0600 file holding the secret access key"}),
    (("--endpoint-url",), {"default": "", "help": "https://... of an S3-compatible store; empty = AWS"}),
    (("--region",), {"default": "eu-west-2"}),
    (("--prefix",), {"default": ""}),
    (("--council",), {"help": "only this council may push there (default: every council)"}),
    (("--ca-bundle",), {"type": Path}),
]


def cmd_add_police_store(args: argparse.Namespace, settings: Any) -> int:
    from control_room.db import make_engine, session_scope

    engine = make_engine(settings.resolved_database_url(), settings.db_pool_size)
    with session_scope(engine) as s:
        store = add_store(
            s,
            args.name,
            args.force,
            args.bucket,
            args.access_key_id,
            args.secret_file,
            args.endpoint_url,
            args.region,
            args.prefix,
            args.council,
            args.ca_bundle,
        )
        print(f"police store {store.name} ({store.force}) added: bucket {store.bucket}")
    return 0
