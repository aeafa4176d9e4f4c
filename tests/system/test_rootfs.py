"""The rootfs helper's own safety: the mirror comes from the machine's apt sources, and a broken
build's leftovers are unmounted before they are deleted (never deleting through a live mount)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from tests.system import rootfs


def test_mirror_from_deb822_sources_skips_security(tmp_path: Path) -> None:
    (tmp_path / "sources.list.d").mkdir()
    (tmp_path / "sources.list.d" / "debian.sources").write_text(
        "Types: deb\nURIs: http://security.debian.org/debian-security\nSuites: bookworm-security\n"
        "Components: main\n\nTypes: deb\nURIs: http://mirror.example/debian\n"
        "Suites: bookworm bookworm-updates\nComponents: main\n")
    assert rootfs.apt_mirror(tmp_path) == "http://mirror.example/debian"


def test_mirror_from_one_line_list_and_none_without_bookworm(tmp_path: Path) -> None:
    (tmp_path / "sources.list.d").mkdir()
    (tmp_path / "sources.list").write_text("deb http://old.example/debian bullseye main\n")
    assert rootfs.apt_mirror(tmp_path) is None
    (tmp_path / "sources.list").write_text(
        "# comment\ndeb [signed-by=/k.gpg] http://mirror.example/debian bookworm main\n")
    assert rootfs.apt_mirror(tmp_path) == "http://mirror.example/debian"


@pytest.mark.skipif(os.geteuid() != 0, reason="mounting proc needs root")
def test_broken_build_is_unmounted_before_it_is_deleted(tmp_path: Path) -> None:
    root = tmp_path / "rootfs.building-1"
    (root / "proc").mkdir(parents=True)
    (root / "etc").mkdir()
    subprocess.run(["mount", "-t", "proc", "proc", str(root / "proc")], check=True)
    try:
        assert rootfs.mounts_under(root) == [str((root / "proc").resolve())]
        rootfs.remove_root(root)
        assert not root.exists() and rootfs.mounts_under(root) == []
        assert Path("/proc/self/status").is_file()  # the host's proc is untouched
    finally:
        if rootfs.mounts_under(root):
            subprocess.run(["umount", "--lazy", str(root / "proc")], check=False)
