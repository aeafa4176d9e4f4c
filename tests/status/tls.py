"""A production-shaped certificate chain for TLS tests and benchmarks/heartbeat.py: RSA-2048 root
(the unit's ca_bundle), intermediate and leaf for 127.0.0.1; the server presents leaf + intermediate."""

from __future__ import annotations

import datetime as dt
import ipaddress
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID


def _cert(subject: str, key: rsa.RSAPrivateKey, issuer: x509.Name | None, signer: rsa.RSAPrivateKey,
          ca: bool) -> x509.Certificate:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)])
    now = dt.datetime.now(dt.UTC)
    builder = (x509.CertificateBuilder().subject_name(name).issuer_name(issuer or name)
               .public_key(key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(now - dt.timedelta(days=1)).not_valid_after(now + dt.timedelta(days=90))
               .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
    if not ca:
        builder = builder.add_extension(x509.SubjectAlternativeName(
            [x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("control.example.org")]),
            critical=False)
    return builder.sign(signer, hashes.SHA256())


def make_chain(folder: Path) -> tuple[Path, Path, Path, int]:
    """Root CA (the unit's ca_bundle), intermediate and leaf, all RSA-2048; the server sends leaf and
    intermediate."""
    keys = [rsa.generate_private_key(public_exponent=65537, key_size=2048) for _ in range(3)]
    root = _cert("Test Root X1", keys[0], None, keys[0], ca=True)
    inter = _cert("Test Intermediate R11", keys[1], root.subject, keys[0], ca=True)
    leaf = _cert("control.example.org", keys[2], inter.subject, keys[1], ca=False)
    pem = serialization.Encoding.PEM
    der_bytes = sum(len(c.public_bytes(serialization.Encoding.DER)) for c in (leaf, inter))
    (folder / "root.pem").write_bytes(root.public_bytes(pem))
    (folder / "chain.pem").write_bytes(leaf.public_bytes(pem) + inter.public_bytes(pem))
    (folder / "key.pem").write_bytes(keys[2].private_bytes(pem, serialization.PrivateFormat.PKCS8,
                                                           serialization.NoEncryption()))
    return folder / "root.pem", folder / "chain.pem", folder / "key.pem", der_bytes
