"""The evidence package: a time-range request approved, the unit's signed range in real S3, the package
built; then verify.py, `sha256sum -c` and the openssl command of VERIFY.txt pass, and a flipped byte, a
removed manifest line or another unit's segment make each check fail naming the file.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest

from control_room.evidence.package import package_path
from tests.evidence.conftest import T0, UNIT
from tests.evidence.flow import approved_and_packaged, unzip

needs_tools = pytest.mark.skipif(
    not (shutil.which("openssl") and shutil.which("sha256sum")),
    reason="openssl and sha256sum (coreutils) are needed",
)


def run(cmd: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=120, check=False)


def verify_py(bag: Path) -> subprocess.CompletedProcess[str]:
    return run([sys.executable, "-I", "verify.py"], bag)


def openssl_line(bag: Path) -> list[str]:
    """The openssl command exactly as VERIFY.txt gives it."""
    line = next(
        x.strip()
        for x in (bag / "VERIFY.txt").read_text().splitlines()
        if x.strip().startswith("openssl pkeyutl") and "control-room.pem" in x
    )
    return line.split()


@pytest.fixture
def bag(app, factory, moto, bucket, segments, unit_key, tmp_path) -> Path:
    with app.app_context():
        from control_room.evidence.web import evidence_dir

        _, _, pkg = approved_and_packaged(
            app,
            factory,
            moto,
            bucket,
            segments,
            unit_key,
            T0 + timedelta(seconds=1),
            T0 + timedelta(seconds=5),
        )
        zip_path = package_path(evidence_dir(), pkg)
    return unzip(zip_path, tmp_path / "unzipped")


@needs_tools
def test_package_layout_and_every_check_passes(bag: Path, segments: list[Path]) -> None:
    masters = sorted((bag / "data" / "master" / UNIT).glob("*/*.mp4"))
    assert [p.name for p in masters] == sorted(p.name for p in segments)
    for p in masters:  # bit for bit what the unit recorded
        assert p.read_bytes() == next(s for s in segments if s.name == p.name).read_bytes()
    working = list((bag / "data" / "working").iterdir())
    assert len(working) == 1 and "WORKING-COPY" in working[0].name and working[0].stat().st_size > 0
    for name in (
        "bagit.txt",
        "bag-info.txt",
        "manifest-sha256.txt",
        "manifest-sha512.txt",
        "tagmanifest-sha256.txt",
        "continuity.json",
        "continuity.html",
        "VERIFY.txt",
        "verify.py",
        "keys/control-room.pem",
        f"keys/unit-{UNIT}.pem",
        "tagmanifest-sha256.txt.sig",
    ):
        assert (bag / name).is_file(), name
    info = (bag / "bag-info.txt").read_text()
    assert "Crime-Reference: 41/12345/26" in info and "Exhibit-Reference: DR-2026-00001-P1" in info
    assert "Lawful-Basis: DPA 2018 Sch. 2 Pt 1 para 2" in info

    result = verify_py(bag)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "VERDICT: PASS" in result.stdout
    for manifest in ("tagmanifest-sha256.txt", "manifest-sha256.txt"):
        check = run(["sha256sum", "-c", manifest], bag)
        assert check.returncode == 0, check.stdout + check.stderr
    signed = run(openssl_line(bag), bag)
    assert signed.returncode == 0 and "Signature Verified Successfully" in signed.stdout, (
        signed.stdout + signed.stderr
    )
    for line in (bag / "VERIFY.txt").read_text().splitlines():  # the unit's own signature, with openssl too
        if line.strip().startswith("openssl pkeyutl") and "keys/unit-" in line:
            unit_sig = run(line.split(), bag)
            assert unit_sig.returncode == 0, unit_sig.stdout + unit_sig.stderr


@needs_tools
def test_a_flipped_byte_in_a_master_fails_every_check_naming_the_file(bag: Path) -> None:
    target = sorted((bag / "data" / "master" / UNIT).glob("*/*.mp4"))[1]
    data = bytearray(target.read_bytes())
    data[len(data) // 2] ^= 0x01
    target.write_bytes(bytes(data))
    rel = target.relative_to(bag).as_posix()

    result = verify_py(bag)
    assert result.returncode == 1 and "VERDICT: FAIL" in result.stdout
    assert f"FAIL {rel}: SHA256 differs from manifest-sha256.txt" in result.stdout
    assert f"FAIL {rel}: differs from the unit's signed manifest" in result.stdout
    check = run(["sha256sum", "-c", "manifest-sha256.txt"], bag)
    assert check.returncode != 0 and f"{rel}: FAILED" in check.stdout


@needs_tools
def test_a_removed_manifest_line_fails_naming_the_file(bag: Path) -> None:
    manifest = bag / "manifest-sha256.txt"
    lines = manifest.read_text().splitlines(keepends=True)
    removed = next(x for x in lines if "/master/" in x and x.rstrip().endswith(".mp4"))
    manifest.write_text("".join(x for x in lines if x != removed))
    rel = removed.split(None, 1)[1].strip()

    result = verify_py(bag)
    assert result.returncode == 1
    assert f"FAIL {rel}: not listed in manifest-sha256.txt" in result.stdout
    assert "FAIL manifest-sha256.txt: SHA256 differs from tagmanifest-sha256.txt" in result.stdout
    check = run(["sha256sum", "-c", "tagmanifest-sha256.txt"], bag)
    assert check.returncode != 0 and "manifest-sha256.txt: FAILED" in check.stdout


@needs_tools
def test_another_units_segment_swapped_in_fails_naming_the_file(
    bag: Path, other_segments: list[Path]
) -> None:
    target = sorted((bag / "data" / "master" / UNIT).glob("*/*.mp4"))[0]
    shutil.copyfile(other_segments[0], target)  # same name, another unit's recording
    rel = target.relative_to(bag).as_posix()

    result = verify_py(bag)
    assert result.returncode == 1
    assert f"FAIL {rel}: differs from the unit's signed manifest" in result.stdout
    check = run(["sha256sum", "-c", "manifest-sha256.txt"], bag)
    assert check.returncode != 0 and f"{rel}: FAILED" in check.stdout


@needs_tools
def test_rewritten_manifests_are_caught_by_the_signature(bag: Path) -> None:
    """Someone who edits a file and recomputes every manifest cannot forge the control room's signature."""
    import hashlib

    target = sorted((bag / "data" / "master" / UNIT).glob("*/*.mp4"))[0]
    target.write_bytes(target.read_bytes() + b"x")
    for alg in ("sha256", "sha512"):
        path = bag / f"manifest-{alg}.txt"
        lines = []
        for line in path.read_text().splitlines():
            digest, rel = line.split(None, 1)
            lines.append(f"{hashlib.new(alg, (bag / rel).read_bytes()).hexdigest()}  {rel}")
        path.write_text("\n".join(lines) + "\n")
    for alg in ("sha256", "sha512"):
        path = bag / f"tagmanifest-{alg}.txt"
        lines = []
        for line in path.read_text().splitlines():
            digest, rel = line.split(None, 1)
            lines.append(f"{hashlib.new(alg, (bag / rel).read_bytes()).hexdigest()}  {rel}")
        path.write_text("\n".join(lines) + "\n")
    assert run(["sha256sum", "-c", "manifest-sha256.txt"], bag).returncode == 0  # hashes alone are fooled
    signed = run(openssl_line(bag), bag)
    assert signed.returncode != 0
    result = verify_py(bag)
    assert "FAIL tagmanifest-sha256.txt.sig: the control room signature does not verify" in result.stdout
    rel = target.relative_to(bag).as_posix()
    assert f"FAIL {rel}: differs from the unit's signed manifest" in result.stdout
