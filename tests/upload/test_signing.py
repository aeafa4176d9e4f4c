"""The unit's manifest key through libcrypto (agent/upload/signing.py): the same keys, public keys and
signatures as cryptography, byte for byte, and cryptography left unimported by `cctv-agent run`'s upload."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from agent.errors import ConfigError
from agent.upload import signing
from agent.upload.manifest import load_signing_key

ROOT = Path(__file__).resolve().parents[2]

needs_libcrypto = pytest.mark.skipif(signing._libcrypto() is None, reason="libcrypto without Ed25519")


def pem(key: Ed25519PrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


@needs_libcrypto
@pytest.mark.parametrize("size", [0, 1, 64, 1000, 100_000])
def test_signatures_are_byte_identical_to_cryptographys(size: int) -> None:
    for _ in range(5):
        theirs = Ed25519PrivateKey.generate()
        ours = signing.load_pem(pem(theirs))
        assert isinstance(ours, signing.LibcryptoKey)
        data = os.urandom(size)
        assert ours.sign(data) == theirs.sign(data)
        raw = theirs.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        assert ours.public_key().public_bytes_raw() == raw
        Ed25519PublicKey.from_public_bytes(raw).verify(ours.sign(data), data)


@needs_libcrypto
def test_rfc8032_test_vector() -> None:
    # RFC 8032 section 7.1, TEST 2 (one-byte message)
    seed = bytes.fromhex("4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb")
    key = signing.load_pem(signing.pem_of_seed(seed))
    assert key.public_key().public_bytes_raw().hex() == (
        "3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c")
    assert key.sign(bytes([0x72])).hex() == (
        "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da"
        "085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00")


def test_created_pem_is_what_cryptography_writes_and_reads() -> None:
    created = signing.new_pem()
    theirs = serialization.load_pem_private_key(created, password=None)
    assert isinstance(theirs, Ed25519PrivateKey)
    assert pem(theirs) == created
    assert signing.seed_of_pem(created) == theirs.private_bytes_raw()


def test_other_forms_and_bad_keys(tmp_path: Path) -> None:
    theirs = Ed25519PrivateKey.generate()
    # another PEM layout of the same key (CRLF, short lines) still loads, through cryptography
    body = pem(theirs).decode().splitlines()
    b64 = body[1]
    odd = "\r\n".join([body[0], b64[:40], b64[40:], body[2]]).encode() + b"\r\n"
    assert signing.load_pem(odd).sign(b"x") == theirs.sign(b"x")
    encrypted = theirs.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                     serialization.BestAvailableEncryption(b"secret"))
    from cryptography.hazmat.primitives.asymmetric import ec

    other = ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    for name, data, match in (("enc.pem", encrypted, "cannot load"), ("ec.pem", other, "not an Ed25519"),
                              ("junk.pem", b"-----BEGIN PRIVATE KEY-----\n!!\n-----END PRIVATE KEY-----\n",
                               "cannot load")):
        path = tmp_path / name
        path.write_bytes(data)
        with pytest.raises(ConfigError, match=f"upload.signing_key: .*{match}"):
            load_signing_key(path, tmp_path)


def test_upload_service_does_not_import_cryptography(tmp_path: Path) -> None:
    """What `run` loads for upload (the worker, intake, manifests) signs without cryptography."""
    code = ("import sys; import agent.upload.worker, agent.upload.intake; "
            "from agent.upload.manifest import load_signing_key; from pathlib import Path; "
            f"k = load_signing_key(None, Path({str(tmp_path)!r})); k.sign(b'x'); "
            "print(sorted(m for m in sys.modules if m.startswith('cryptography')))")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    if signing._libcrypto() is not None:
        assert out.stdout.strip() == "[]"
