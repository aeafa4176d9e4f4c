"""What role cctv_agent builds the unit's wheels from, on the controller: the sources alone (no
bytecode, no earlier build output) and one archive of the dependency wheels with fixed metadata, so
an unchanged checkout gives the same bytes and a second site.yml run copies and reinstalls nothing.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import tarfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
FILES = REPO / "ansible" / "roles" / "cctv_agent" / "files"


def script(name: str, *argv: Path) -> None:
    done = subprocess.run([sys.executable, str(FILES / name), *map(str, argv)], capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr


def test_export_holds_the_packages_and_nothing_a_build_or_an_import_left(tmp_path: Path) -> None:
    checkout = tmp_path / "checkout"
    script("export_sources.py", REPO, checkout)  # a copy of this checkout to dirty
    (checkout / "control_room/migrations/versions/__pycache__").mkdir(parents=True, exist_ok=True)
    (checkout / "control_room/migrations/versions/__pycache__/0001_initial.cpython-311.pyc").write_bytes(b"x")
    (checkout / "build/lib/agent").mkdir(parents=True)
    (checkout / "build/lib/agent/deleted_long_ago.py").write_text("")
    (checkout / "mobile_cctv.egg-info").mkdir()
    (checkout / "tests").mkdir()

    out = tmp_path / "export"
    script("export_sources.py", checkout, out)
    script("export_sources.py", checkout, out)  # replaces, never merges
    names = {p.relative_to(out).as_posix() for p in out.rglob("*")}
    assert {"pyproject.toml", "README.md", "agent/cli.py", "control_room/migrations/env.py",
            "provisioning/cli.py", "protocol/__init__.py"} <= names
    assert not [n for n in names if "__pycache__" in n or n.endswith(".pyc") or n.startswith(
        ("build", "tests", "mobile_cctv.egg-info"))]


def test_same_wheels_give_the_same_archive_bytes(tmp_path: Path) -> None:
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    for i, name in enumerate(("numpy-2.0-cp311-none-any.whl", "av-1.0-py3-none-any.whl")):
        (wheels / name).write_bytes(os.urandom(1000) + bytes([i]))
    script("pack_wheels.py", wheels, tmp_path / "a.tar")
    for wheel in wheels.iterdir():  # touched, re-downloaded: same content, other times and modes
        os.utime(wheel, (1_800_000_000, 1_800_000_000))
        wheel.chmod(0o600)
    (wheels / "not-a-wheel.txt").write_text("pip's partial download")
    script("pack_wheels.py", wheels, tmp_path / "b.tar")

    def digest(p: Path) -> str:
        return hashlib.sha256(p.read_bytes()).hexdigest()

    assert digest(tmp_path / "a.tar") == digest(tmp_path / "b.tar")
    with tarfile.open(tmp_path / "a.tar") as tar:
        members = tar.getmembers()
    assert [m.name for m in members] == ["av-1.0-py3-none-any.whl", "numpy-2.0-cp311-none-any.whl"]
    assert {(m.mode, m.uid, m.gid) for m in members} == {(0o644, 0, 0)}
    assert not list(tmp_path.glob(".*.tar.*"))  # no temporary left beside it
