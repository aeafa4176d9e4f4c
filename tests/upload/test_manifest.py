"""Manifests: signed with the unit's Ed25519 key, chained; any edit, gap or foreign key is detected."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import time
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from agent.errors import ConfigError
from agent.upload.manifest import (
    ManifestError,
    build_manifest,
    load_signing_key,
    verify_chain,
    verify_files,
    verify_manifest,
)
from tests.upload.conftest import publish


def chain(tmp_path: Path, key: Ed25519PrivateKey, n: int) -> tuple[list[bytes], list]:
    data = tmp_path / "data"
    records = [publish(data, time.time() - 600 + i * 30, os.urandom(5000)) for i in range(n)]
    raws: list[bytes] = []
    for r in records:
        prev = hashlib.sha256(raws[-1]).hexdigest() if raws else None
        raws.append(build_manifest(r, "herts-mcu-001", prev, key))
    return raws, records


def test_a_valid_chain_verifies_and_files_match(tmp_path: Path) -> None:
    key = Ed25519PrivateKey.generate()
    raws, records = chain(tmp_path, key, 3)
    pub = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    docs = verify_chain(raws, pub)
    assert [d["event_id"] for d in docs] == [r.event_id for r in records]
    verify_files(docs[1], tmp_path / "data" / Path(records[1].files[0].path).parent)
    assert build_manifest(records[0], "herts-mcu-001", None, key) == raws[0]  # deterministic (crash-safe)


def test_edits_gaps_foreign_keys_and_altered_files_are_detected(tmp_path: Path) -> None:
    key = Ed25519PrivateKey.generate()
    raws, records = chain(tmp_path, key, 3)
    doc = json.loads(raws[1])
    doc["files"][0]["sha256"] = "0" * 64
    with pytest.raises(ManifestError, match="bad signature"):
        verify_manifest(json.dumps(doc).encode())
    with pytest.raises(ManifestError, match="chain broken"):
        verify_chain([raws[0], raws[2]])
    other = (
        Ed25519PrivateKey.generate()
        .public_key()
        .public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    )
    with pytest.raises(ManifestError, match="another key"):
        verify_manifest(raws[0], other)
    folder = tmp_path / "data" / Path(records[2].files[0].path).parent
    (folder / "clip.mp4").write_bytes(b"tampered")
    with pytest.raises(ManifestError, match="clip.mp4 differs"):
        verify_files(json.loads(raws[2]), folder)
    assert base64.b64decode(json.loads(raws[0])["public_key"])


def test_signing_key_is_created_private_or_refused_clearly(tmp_path: Path) -> None:
    key = load_signing_key(None, tmp_path)
    path = tmp_path / "keys" / "manifest_ed25519.pem"
    assert path.stat().st_mode & 0o777 == 0o600
    again = load_signing_key(None, tmp_path)
    assert key.public_key().public_bytes_raw() == again.public_key().public_bytes_raw()
    bad = tmp_path / "bad.pem"
    bad.write_text("not a key")
    with pytest.raises(ConfigError, match="upload.signing_key"):
        load_signing_key(bad, tmp_path)
