"""Per-event manifest (unit -> bucket, then evidence packages): the canonical bytes a unit signs, and
the checks of its Ed25519 signature and of the chain of manifests.

agent.upload.manifest builds and signs them; control_room.evidence checks them before packaging.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from typing import Any

MANIFEST_NAME = "manifest.json"


class ManifestError(ValueError):
    """A manifest is malformed, its signature is wrong, or the chain is broken (not retryable)."""


def canonical(doc: dict[str, Any]) -> bytes:
    """What a unit signs: the manifest without its signature, sorted keys, compact separators."""
    return json.dumps(
        {k: v for k, v in doc.items() if k != "signature"}, sort_keys=True, separators=(",", ":")
    ).encode()


def verify_manifest(raw: bytes, public_key: bytes | None = None) -> dict[str, Any]:
    """Parse a manifest and check its signature (against `public_key`, raw 32 bytes, when given)."""
    try:
        doc = json.loads(raw)
        signature = base64.b64decode(doc["signature"], validate=True)
        embedded = base64.b64decode(doc["public_key"], validate=True)
    except (ValueError, KeyError, TypeError, binascii.Error) as err:
        raise ManifestError(f"malformed manifest: {err}") from None
    if public_key is not None and embedded != public_key:
        raise ManifestError(f"manifest {doc.get('event_id')}: signed by another key")
    # imported here: a unit signs but never verifies in `cctv-agent run` (agent/upload/signing.py)
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    try:
        Ed25519PublicKey.from_public_bytes(embedded).verify(signature, canonical(doc))
    except (InvalidSignature, ValueError):
        raise ManifestError(f"manifest {doc.get('event_id')}: bad signature") from None
    return doc


def verify_chain(manifests: list[bytes], public_key: bytes | None = None) -> list[dict[str, Any]]:
    """Verify signatures and links of consecutive manifests (oldest first); a gap or edit raises."""
    docs = []
    previous: bytes | None = None
    for raw in manifests:
        doc = verify_manifest(raw, public_key)
        link = doc.get("previous_manifest_sha256")
        if previous is not None and link != hashlib.sha256(previous).hexdigest():
            raise ManifestError(
                f"manifest {doc['event_id']}: chain broken (previous manifest missing or altered)"
            )
        docs.append(doc)
        previous = raw
    return docs
