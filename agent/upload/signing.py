"""The unit's Ed25519 manifest key: loaded or created at upload start, used by intake to sign manifests.

Signs with the OpenSSL libcrypto that Python's own ssl and hashlib modules already load, so `cctv-agent
run` does not import cryptography (about 7-9 MB RSS: its Rust module links a second OpenSSL). Ed25519
is deterministic: the signatures are byte-identical to cryptography's (tests/upload/test_signing.py).
Where libcrypto lacks Ed25519 (OpenSSL < 1.1.1) or a key file is in a form other than the plain PKCS8
one, cryptography is imported after all and does the work, as before.
"""

from __future__ import annotations

import base64
import ctypes
import ctypes.util
import functools
import os
import threading
from typing import Any, Protocol

PUBLIC_SIZE = SEED_SIZE = 32
SIGNATURE_SIZE = 64
NID_ED25519 = 1087  # EVP_PKEY_ED25519 in OpenSSL's obj_mac.h
# PKCS8 PrivateKeyInfo of an Ed25519 key (RFC 8410), version 0, no attributes: this prefix and the seed
PKCS8_PREFIX = bytes.fromhex("302e020100300506032b657004220420")
PEM_BEGIN, PEM_END = b"-----BEGIN PRIVATE KEY-----", b"-----END PRIVATE KEY-----"


class PublicKey(Protocol):
    def public_bytes_raw(self) -> bytes: ...


class Signer(Protocol):
    """What signs a manifest: this module's key or cryptography's Ed25519PrivateKey (same API)."""

    def sign(self, data: bytes) -> bytes: ...

    def public_key(self) -> PublicKey: ...


@functools.cache
def _libcrypto() -> Any | None:
    """libcrypto with its Ed25519 entry points typed, or None where it has none."""
    name = ctypes.util.find_library("crypto")
    if not name:
        return None
    try:
        lib = ctypes.CDLL(name)
        p, sz, i = ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int
        for fn, args, res in (
            ("EVP_PKEY_new_raw_private_key", [i, p, ctypes.c_char_p, sz], p),
            ("EVP_PKEY_get_raw_public_key", [p, ctypes.c_char_p, ctypes.POINTER(sz)], i),
            ("EVP_PKEY_free", [p], None),
            ("EVP_MD_CTX_new", [], p),
            ("EVP_MD_CTX_free", [p], None),
            ("EVP_DigestSignInit", [p, p, p, p, p], i),
            ("EVP_DigestSign", [p, ctypes.c_char_p, ctypes.POINTER(sz), ctypes.c_char_p, sz], i),
        ):
            f = getattr(lib, fn)
            f.argtypes, f.restype = args, res
    except (OSError, AttributeError):
        return None
    return lib


class _RawPublic:
    def __init__(self, raw: bytes) -> None:
        self._raw = raw

    def public_bytes_raw(self) -> bytes:
        return self._raw


class LibcryptoKey:
    """An Ed25519 private key held by libcrypto (EVP_PKEY); sign() is safe from any thread."""

    def __init__(self, lib: Any, seed: bytes) -> None:
        if len(seed) != SEED_SIZE:
            raise ValueError("an Ed25519 private key is 32 bytes")
        self._lib, self._lock = lib, threading.Lock()
        self._pkey = lib.EVP_PKEY_new_raw_private_key(NID_ED25519, None, seed, SEED_SIZE)
        if not self._pkey:
            raise ValueError("libcrypto refused the Ed25519 key")
        buf, n = ctypes.create_string_buffer(PUBLIC_SIZE), ctypes.c_size_t(PUBLIC_SIZE)
        if lib.EVP_PKEY_get_raw_public_key(self._pkey, buf, ctypes.byref(n)) != 1 or n.value != PUBLIC_SIZE:
            raise ValueError("libcrypto could not derive the Ed25519 public key")
        self._public = _RawPublic(buf.raw)

    def public_key(self) -> _RawPublic:
        return self._public

    def sign(self, data: bytes) -> bytes:
        lib = self._lib
        with self._lock:
            ctx = lib.EVP_MD_CTX_new()
            if not ctx:
                raise MemoryError("EVP_MD_CTX_new failed")
            try:
                sig, n = ctypes.create_string_buffer(SIGNATURE_SIZE), ctypes.c_size_t(SIGNATURE_SIZE)
                if (lib.EVP_DigestSignInit(ctx, None, None, None, self._pkey) != 1
                        or lib.EVP_DigestSign(ctx, sig, ctypes.byref(n), data, len(data)) != 1
                        or n.value != SIGNATURE_SIZE):
                    raise RuntimeError("libcrypto failed to sign with Ed25519")
                return sig.raw
            finally:
                lib.EVP_MD_CTX_free(ctx)

    def __del__(self) -> None:
        pkey, self._pkey = getattr(self, "_pkey", None), None
        if pkey:
            self._lib.EVP_PKEY_free(pkey)


def seed_of_pem(pem: bytes) -> bytes | None:
    """The 32-byte seed of an unencrypted PKCS8 Ed25519 PEM in its plain form (what cryptography,
    `openssl genpkey -algorithm ed25519` and provisioning write); None for any other form."""
    lines = pem.strip().splitlines()
    if len(lines) < 3 or lines[0].strip() != PEM_BEGIN or lines[-1].strip() != PEM_END:
        return None
    try:
        der = base64.b64decode(b"".join(line.strip() for line in lines[1:-1]), validate=True)
    except ValueError:
        return None
    if len(der) != len(PKCS8_PREFIX) + SEED_SIZE or not der.startswith(PKCS8_PREFIX):
        return None
    return der[len(PKCS8_PREFIX):]


def pem_of_seed(seed: bytes) -> bytes:
    """PKCS8 PEM of an Ed25519 seed, as cryptography writes it (PrivateFormat.PKCS8, no encryption)."""
    body = base64.b64encode(PKCS8_PREFIX + seed)
    lines = [body[i:i + 64] for i in range(0, len(body), 64)]
    return b"\n".join([PEM_BEGIN, *lines, PEM_END]) + b"\n"


def new_pem() -> bytes:
    """A fresh private key (the seed from the OS's CSPRNG), as PKCS8 PEM."""
    return pem_of_seed(os.urandom(SEED_SIZE))


def load_pem(pem: bytes) -> Signer:
    """The signing key of a PEM; ValueError for anything that is not an unencrypted Ed25519
    private key (TypeError from cryptography for another key type)."""
    seed, lib = seed_of_pem(pem), _libcrypto()
    if seed is not None and lib is not None:
        return LibcryptoKey(lib, seed)
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    try:
        key = serialization.load_pem_private_key(pem, password=None)
    except TypeError as err:  # e.g. "Password was not given but private key is encrypted"
        raise ValueError(str(err)) from None
    if not isinstance(key, Ed25519PrivateKey):
        raise TypeError("not an Ed25519 private key")
    if lib is None:
        return key
    return LibcryptoKey(lib, key.private_bytes_raw())
