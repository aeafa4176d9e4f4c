#!/usr/bin/env python3
"""verify.py: checks a mobile-cctv evidence package (BagIt) with nothing but Python 3's standard library.

Shipped in every package as verify.py. Usage: python3 verify.py [PACKAGE_FOLDER]  (default: its own folder).
It checks every SHA-256 and SHA-512 of manifest-*.txt and tagmanifest-*.txt, that no file was added or
removed, the control room's Ed25519 signature over tagmanifest-sha256.txt, each unit's signed manifest
(Ed25519) against the files in data/master/, and the chain of unit manifests recorded in continuity.json.
Exit status 0 = PASS, 1 = FAIL (every problem is printed with the file it concerns), 2 = not a package.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import sys
from pathlib import Path

# --- Ed25519 signature verification (RFC 8032, section 6), pure Python ---------------------------
_P = 2**255 - 19
_L = 2**252 + 27742317777372353535851937790883648493
_D = -121665 * pow(121666, _P - 2, _P) % _P
_I = pow(2, (_P - 1) // 4, _P)


def _add(a: tuple, b: tuple) -> tuple:
    x1, y1, z1, t1 = a
    x2, y2, z2, t2 = b
    aa = (y1 - x1) * (y2 - x2) % _P
    bb = (y1 + x1) * (y2 + x2) % _P
    cc = t1 * 2 * _D * t2 % _P
    dd = z1 * 2 * z2 % _P
    e, f, g, h = bb - aa, dd - cc, dd + cc, bb + aa
    return (e * f % _P, g * h % _P, f * g % _P, e * h % _P)


def _mul(s: int, pt: tuple) -> tuple:
    q = (0, 1, 1, 0)
    while s > 0:
        if s & 1:
            q = _add(q, pt)
        pt = _add(pt, pt)
        s >>= 1
    return q


def _equal(a: tuple, b: tuple) -> bool:
    return (a[0] * b[2] - b[0] * a[2]) % _P == 0 and (a[1] * b[2] - b[1] * a[2]) % _P == 0


def _recover_x(y: int, sign: int) -> int | None:
    if y >= _P:
        return None
    x2 = (y * y - 1) * pow(_D * y * y + 1, _P - 2, _P) % _P
    if x2 == 0:
        return None if sign else 0
    x = pow(x2, (_P + 3) // 8, _P)
    if (x * x - x2) % _P != 0:
        x = x * _I % _P
    if (x * x - x2) % _P != 0:
        return None
    return _P - x if (x & 1) != sign else x


def _decompress(s: bytes) -> tuple | None:
    y = int.from_bytes(s, "little")
    sign = y >> 255
    y &= (1 << 255) - 1
    x = _recover_x(y, sign)
    return None if x is None else (x, y, 1, x * y % _P)


_GY = 4 * pow(5, _P - 2, _P) % _P
_GX = _recover_x(_GY, 0) or 0
_G = (_GX, _GY, 1, _GX * _GY % _P)


def ed25519_verify(public: bytes, message: bytes, signature: bytes) -> bool:
    if len(public) != 32 or len(signature) != 64:
        return False
    a, r = _decompress(public), _decompress(signature[:32])
    s = int.from_bytes(signature[32:], "little")
    if a is None or r is None or s >= _L:
        return False
    h = int.from_bytes(hashlib.sha512(signature[:32] + public + message).digest(), "little") % _L
    return _equal(_mul(s, _G), _add(r, _mul(h, a)))


_SPKI_PREFIX = bytes.fromhex("302a300506032b6570032100")


def pem_public_key(path: Path) -> bytes:
    """The raw 32-byte key of an Ed25519 'PUBLIC KEY' PEM file."""
    lines = path.read_text(encoding="ascii").split()
    body = "".join(
        x for x in lines if not x.startswith("-----") and x not in ("BEGIN", "END", "PUBLIC", "KEY-----")
    )
    der = base64.b64decode(body)
    if len(der) != 44 or not der.startswith(_SPKI_PREFIX):
        raise ValueError(f"{path.name} is not an Ed25519 public key")
    return der[12:]


# --- the checks -----------------------------------------------------------------------------------
ALGORITHMS = ("sha256", "sha512")


class Report:
    def __init__(self) -> None:
        self.problems: list[str] = []
        self.notes: list[str] = []

    def fail(self, path: str, what: str) -> None:
        self.problems.append(f"FAIL {path}: {what}")

    def ok(self, text: str) -> None:
        self.notes.append(f"ok   {text}")


def _digest(path: Path, algorithm: str) -> str:
    h = hashlib.new(algorithm)
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _decode(name: str) -> str:
    return name.replace("%0D", "\r").replace("%0A", "\n").replace("%25", "%")


def _read_manifest(bag: Path, name: str, report: Report) -> dict[str, str]:
    entries: dict[str, str] = {}
    path = bag / name
    if not path.is_file():
        report.fail(name, "missing")
        return entries
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        digest, sep, rel = line.partition(" ")
        rel = _decode(rel.strip().lstrip("*"))
        if not sep or not rel or rel.startswith("/") or ".." in Path(rel).parts:
            report.fail(name, f"line {number} is not 'HASH  PATH'")
            continue
        entries[rel] = digest.lower()
    return entries


def _all_files(bag: Path, under: Path) -> set[str]:
    return {p.relative_to(bag).as_posix() for p in under.rglob("*") if p.is_file()}


def check_manifests(bag: Path, report: Report, tag: bool) -> None:
    prefix = "tagmanifest" if tag else "manifest"
    if tag:
        present = {p for p in _all_files(bag, bag) if not p.startswith("data/")}
        present -= {f"tagmanifest-{a}.txt" for a in ALGORITHMS} | {"tagmanifest-sha256.txt.sig"}
    else:
        present = _all_files(bag, bag / "data") if (bag / "data").is_dir() else set()
    for algorithm in ALGORITHMS:
        name = f"{prefix}-{algorithm}.txt"
        entries = _read_manifest(bag, name, report)
        bad = 0
        for rel, digest in sorted(entries.items()):
            path = bag / rel
            if not tag and not rel.startswith("data/"):
                report.fail(rel, f"listed in {name} but outside data/")
                bad += 1
            elif not path.is_file():
                report.fail(rel, f"listed in {name} but missing")
                bad += 1
            elif _digest(path, algorithm) != digest:
                report.fail(rel, f"{algorithm.upper()} differs from {name} (altered)")
                bad += 1
        for rel in sorted(present - set(entries)):
            report.fail(rel, f"not listed in {name} (added, or its line was removed)")
            bad += 1
        if entries and not bad:
            report.ok(f"{name}: {len(entries)} file(s) match")


def check_signature(bag: Path, report: Report) -> None:
    key, sig, signed = (
        bag / "keys" / "control-room.pem",
        bag / "tagmanifest-sha256.txt.sig",
        bag / "tagmanifest-sha256.txt",
    )
    for path in (key, sig, signed):
        if not path.is_file():
            report.fail(path.relative_to(bag).as_posix(), "missing: the package signature cannot be checked")
            return
    try:
        public = pem_public_key(key)
    except ValueError as err:
        report.fail("keys/control-room.pem", str(err))
        return
    if ed25519_verify(public, signed.read_bytes(), sig.read_bytes()):
        fingerprint = hashlib.sha256(public).hexdigest()
        report.ok(f"tagmanifest-sha256.txt signed by the control room key SHA256:{fingerprint}")
    else:
        report.fail("tagmanifest-sha256.txt.sig", "the control room signature does not verify")


def _canonical(doc: dict) -> bytes:
    return json.dumps(
        {k: v for k, v in doc.items() if k != "signature"}, sort_keys=True, separators=(",", ":")
    ).encode()


def check_unit_manifests(bag: Path, report: Report) -> dict[str, dict]:
    docs: dict[str, dict] = {}
    master = bag / "data" / "master"
    for path in sorted(master.glob("*/*/manifest.json")) if master.is_dir() else []:
        rel = path.relative_to(bag).as_posix()
        unit_folder = path.parent.parent.name
        try:
            raw = path.read_bytes()
            doc = json.loads(raw)
            signature = base64.b64decode(doc["signature"])
            embedded = base64.b64decode(doc["public_key"])
        except (ValueError, KeyError, TypeError) as err:
            report.fail(rel, f"malformed unit manifest ({err})")
            continue
        key_file = bag / "keys" / f"unit-{unit_folder}.pem"
        try:
            unit_key = pem_public_key(key_file)
        except (OSError, ValueError) as err:
            report.fail(f"keys/unit-{unit_folder}.pem", f"unit key unreadable ({err})")
            continue
        if embedded != unit_key:
            report.fail(rel, f"signed by a key that is not keys/unit-{unit_folder}.pem")
        elif not ed25519_verify(unit_key, _canonical(doc), signature):
            report.fail(rel, "the unit's signature does not verify (manifest altered)")
        if doc.get("unit_id") != unit_folder:
            report.fail(rel, f"manifest names unit {doc.get('unit_id')!r}, folder says {unit_folder!r}")
        named = set()
        for f in doc.get("files", []):
            name = str(f.get("name", ""))
            named.add(name)
            target = path.parent / name
            trel = target.relative_to(bag).as_posix()
            if not target.is_file():
                report.fail(trel, "named in the unit's manifest but missing")
            elif target.stat().st_size != f.get("size") or _digest(target, "sha256") != f.get("sha256"):
                report.fail(trel, "differs from the unit's signed manifest (not what the unit recorded)")
        for extra in sorted(
            p.name for p in path.parent.iterdir() if p.is_file() and p.name != "manifest.json"
        ):
            if extra not in named:
                report.fail(
                    (path.parent / extra).relative_to(bag).as_posix(),
                    "not named in the unit's signed manifest",
                )
        docs[rel] = {"doc": doc, "sha256": hashlib.sha256(raw).hexdigest()}
    if docs:
        report.ok(f"{len(docs)} unit manifest(s) checked against their files")
    return docs


def check_chain(bag: Path, docs: dict[str, dict], report: Report) -> None:
    path = bag / "continuity.json"
    if not path.is_file():
        report.fail("continuity.json", "missing")
        return
    try:
        continuity = json.loads(path.read_text(encoding="utf-8"))
        recorded = {r["manifest"]["path"]: r["manifest"] for r in continuity["records"]}
    except (ValueError, KeyError, TypeError) as err:
        report.fail("continuity.json", f"malformed ({err})")
        return
    by_hash = {d["sha256"]: rel for rel, d in docs.items()}
    linked = earlier = 0
    for rel, d in sorted(docs.items()):
        entry = recorded.get(rel)
        if entry is None:
            report.fail(rel, "not in continuity.json")
            continue
        if entry.get("sha256") != d["sha256"]:
            report.fail(rel, "differs from the manifest recorded in continuity.json")
        previous = d["doc"].get("previous_manifest_sha256")
        if previous != entry.get("previous_manifest_sha256"):
            report.fail(rel, "chain link differs from continuity.json")
        if previous in by_hash:
            linked += 1
        else:
            earlier += 1
    missing = sorted(set(recorded) - set(docs))
    for rel in missing:
        report.fail(rel, "recorded in continuity.json but not in the package")
    if docs and not missing:
        report.ok(f"manifest chain: {linked} link(s) inside the package, {earlier} from earlier footage")


def verify(bag: Path) -> int:
    if not (bag / "bagit.txt").is_file():
        print(f"{bag}: not an evidence package (no bagit.txt)")
        return 2
    report = Report()
    check_manifests(bag, report, tag=False)
    check_manifests(bag, report, tag=True)
    check_signature(bag, report)
    docs = check_unit_manifests(bag, report)
    check_chain(bag, docs, report)
    for working in (
        sorted((bag / "data" / "working").glob("*")) if (bag / "data" / "working").is_dir() else []
    ):
        if "WORKING-COPY" not in working.name:
            report.fail(working.relative_to(bag).as_posix(), "a working copy not named as one")
    for line in report.notes + report.problems:
        print(line)
    if report.problems:
        print(f"VERDICT: FAIL - {len(report.problems)} problem(s); do not rely on this package")
        return 1
    print("VERDICT: PASS - every file matches its hashes, the signatures verify and the chain is intact")
    return 0


def main(argv: list[str]) -> int:
    folder = Path(argv[1]) if len(argv) > 1 else Path(os.path.dirname(os.path.abspath(__file__)))
    return verify(folder.resolve())


if __name__ == "__main__":
    sys.exit(main(sys.argv))
