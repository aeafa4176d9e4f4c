"""Per-event manifest.json: what the unit recorded, hashed, signed with the unit's Ed25519 key, chained.

Written at intake next to the event's files and uploaded first; each manifest carries the SHA-256 of
the previous one, so a missing, reordered or altered clip is detectable later (verify_* for export).
"""

from __future__ import annotations

import base64
import json
import os
from pathlib import Path
from typing import Any

from agent import __version__
from agent.errors import ConfigError, InputError
from agent.events.outbox import EventRecord
from agent.fsutil import atomic_write_bytes, sha256_file
from agent.upload.signing import Signer, load_pem, new_pem
from protocol import VERSION
from protocol import manifest as rules
from protocol.manifest import MANIFEST_NAME

SCHEMA = VERSION
DEFAULT_KEY = Path("keys") / "manifest_ed25519.pem"


class ManifestError(InputError):
    """A manifest is malformed, its signature is wrong, a file differs from it or the chain is broken."""


def load_signing_key(path: Path | None, data_dir: Path) -> Signer:
    """The unit's key: the configured PEM file, or one created (0600) under data_dir on first use
    (agent/upload/signing.py; cryptography's Ed25519PrivateKey is accepted wherever a key is)."""
    if path is not None:
        try:
            return load_pem(path.read_bytes())
        except (OSError, ValueError) as err:
            raise ConfigError(f"upload.signing_key: cannot load {path}: {err}") from None
        except TypeError:
            raise ConfigError(f"upload.signing_key: {path} is not an Ed25519 private key") from None
    default = data_dir / DEFAULT_KEY
    if not default.exists():
        default.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        atomic_write_bytes(default, new_pem(), mode=0o600)
    return load_signing_key(default, data_dir)


def public_key_b64(key: Signer) -> str:
    return base64.b64encode(key.public_key().public_bytes_raw()).decode()


def build_manifest(record: EventRecord, unit_id: str, previous_sha256: str | None, key: Signer) -> bytes:
    """The signed manifest bytes for an event; deterministic for the same inputs."""
    doc: dict[str, Any] = {
        "schema": SCHEMA,
        "event_id": record.event_id,
        "unit_id": unit_id,
        "site": record.site,
        "start": record.start,
        "end": record.end,
        "clip_start": record.clip_start,
        "clip_end": record.clip_end,
        "clock_synced": record.clock_synced,
        "software_version": record.software_version,
        "uploader_version": __version__,
        "files": [
            {
                "name": Path(f.path).name,
                "role": f.role,
                "size": f.size,
                "sha256": f.sha256,
                "content_type": f.content_type,
            }
            for f in record.files
        ],
        "previous_manifest_sha256": previous_sha256,
        "public_key": public_key_b64(key),
    }
    doc["signature"] = base64.b64encode(key.sign(rules.canonical(doc))).decode()
    return json.dumps(doc, sort_keys=True, indent=1).encode() + b"\n"


def verify_manifest(raw: bytes, public_key: bytes | None = None) -> dict[str, Any]:
    """protocol.manifest.verify_manifest, raising this module's ManifestError (an InputError)."""
    try:
        return rules.verify_manifest(raw, public_key)
    except rules.ManifestError as err:
        raise ManifestError(str(err)) from None


def verify_files(doc: dict[str, Any], folder: Path) -> None:
    """Check that every file the manifest names is in `folder` with its size and SHA-256."""
    for f in doc["files"]:
        path = folder / f["name"]
        if not path.is_file():
            raise ManifestError(f"{doc['event_id']}: {f['name']} is missing")
        if path.stat().st_size != f["size"] or sha256_file(path) != f["sha256"]:
            raise ManifestError(f"{doc['event_id']}: {f['name']} differs from its manifest")


def verify_chain(manifests: list[bytes], public_key: bytes | None = None) -> list[dict[str, Any]]:
    """protocol.manifest.verify_chain, raising this module's ManifestError (an InputError)."""
    try:
        return rules.verify_chain(manifests, public_key)
    except rules.ManifestError as err:
        raise ManifestError(str(err)) from None


def write_manifest(folder: Path, raw: bytes) -> Path:
    path = folder / MANIFEST_NAME
    atomic_write_bytes(path, raw, mode=0o640)
    os.chmod(path, 0o640)
    return path
