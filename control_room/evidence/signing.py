"""Ed25519 keys of the evidence chain: the control room's own key (signs each package's tag manifest)
and the check of a unit's signed manifest (the same canonical form as agent/upload/manifest.py).

The control room key is a 0600 PEM file, created on first use; only its public half leaves the machine.
"""

from __future__ import annotations

import base64
import os
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from control_room.errors import ControlRoomError
from protocol import manifest as rules


class SignatureError(ControlRoomError, ValueError):
    """A unit manifest is malformed or its signature does not verify."""


def load_or_create_key(path: Path) -> Ed25519PrivateKey:
    """The control room's signing key; created (0600, written atomically) when the file is absent."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        pem = Ed25519PrivateKey.generate().private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(pem)
            fh.flush()
            os.fsync(fh.fileno())
        try:
            os.link(tmp, path)  # never replaces a key another process created meanwhile
        except FileExistsError:
            pass
        finally:
            tmp.unlink()
    key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    if not isinstance(key, Ed25519PrivateKey):
        raise ValueError(f"{path} is not an Ed25519 private key")
    return key


def public_pem(key: Ed25519PrivateKey | Ed25519PublicKey) -> bytes:
    pub = key.public_key() if isinstance(key, Ed25519PrivateKey) else key
    return pub.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


def raw_public(key: Ed25519PrivateKey) -> bytes:
    return key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def pem_from_b64(raw_b64: str) -> bytes:
    return public_pem(Ed25519PublicKey.from_public_bytes(base64.b64decode(raw_b64)))


canonical = rules.canonical  # what a unit signs (protocol.manifest)


def verify_unit_manifest(raw: bytes) -> tuple[dict[str, Any], bytes]:
    """Parse a unit manifest and check its signature with its embedded key: (doc, raw signature)."""
    try:
        doc = rules.verify_manifest(raw)
    except rules.ManifestError as err:
        raise SignatureError(str(err)) from None
    signature = base64.b64decode(doc["signature"])
    if not isinstance(doc.get("files"), list) or not isinstance(doc.get("unit_id"), str):
        raise SignatureError("malformed manifest: no files or unit_id")
    return doc, signature
