"""A blank Debian bookworm root (debootstrap minbase plus what Raspberry Pi OS Lite ships: python3,
python3-apt, systemd, dbus) for site.yml, cached in the system temp dir like rootfs.py's; the
agent's dependency wheels for the controller; and the apt archives kept between runs.

Each test works on a copy of the cached root (cp --reflink=auto), so the cache stays blank.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import subprocess
from pathlib import Path

from tests.system import rootfs

BLANK_PACKAGES = "python3,python3-apt,systemd,systemd-sysv,dbus,ca-certificates"
RECIPE = 1
APT_ARCHIVES = rootfs.CACHE_PARENT / "mobile-cctv-apt-archives"


def _cached(name: str, build: object) -> Path:
    final = rootfs.CACHE_PARENT / name
    if final.is_dir():
        return final
    with open(rootfs.CACHE_PARENT / f"{name.rsplit('-', 1)[0]}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if final.is_dir():
            return final
        for stale in rootfs.CACHE_PARENT.glob(f"{name}.building-*"):
            rootfs.remove_root(stale)
        tmp = rootfs.CACHE_PARENT / f"{name}.building-{os.getpid()}"
        try:
            build(tmp)  # type: ignore[operator]
        except BaseException:
            rootfs.remove_root(tmp)
            raise
        tmp.rename(final)
    return final


def blank_root() -> Path:
    key = hashlib.sha256(f"{RECIPE} {BLANK_PACKAGES}".encode()).hexdigest()[:12]
    return _cached(f"mobile-cctv-blank-{key}", _build_blank)


def _build_blank(root: Path) -> None:
    rootfs.run(["debootstrap", "--variant=minbase", f"--include={BLANK_PACKAGES}", "bookworm", str(root),
                str(rootfs.apt_mirror())], timeout=900)
    # package lists, as on a freshly flashed card that has been online once
    rootfs.run(["chroot", str(root), "apt-get", "update", "-qq"], timeout=300)
    rootfs.run(["chroot", str(root), "apt-get", "clean"], timeout=60)


def wheelhouse() -> Path:
    """The agent's dependency wheels for this machine (the unit under test is x86_64 here; a Pi
    gets aarch64 ones from the role's pip download). Keyed on the agent's requirements."""
    key = hashlib.sha256(rootfs.agent_requirements()).hexdigest()[:12]
    return _cached(f"mobile-cctv-wheelhouse-{key}", _build_wheelhouse)


def _build_wheelhouse(dest: Path) -> None:
    dest.mkdir(parents=True)
    rootfs.build_wheelhouse(dest)
    for own in dest.glob("mobile_cctv-*.whl"):  # the playbook builds the project itself
        own.unlink()


def working_copy(dest: Path) -> Path:
    """A fresh copy of the blank root, with the apt archives of earlier runs (fewer downloads)."""
    subprocess.run(["cp", "-a", "--reflink=auto", str(blank_root()), str(dest)], check=True, timeout=300)
    archives = dest / "var/cache/apt/archives"
    if APT_ARCHIVES.is_dir():
        for deb in APT_ARCHIVES.glob("*.deb"):
            shutil.copy2(deb, archives / deb.name)
    return dest


def keep_apt_archives(root: Path) -> None:
    APT_ARCHIVES.mkdir(exist_ok=True)
    for deb in (root / "var/cache/apt/archives").glob("*.deb"):
        target = APT_ARCHIVES / deb.name
        if not target.exists():
            tmp = APT_ARCHIVES / f".{deb.name}.{os.getpid()}"
            shutil.copy2(deb, tmp)
            tmp.rename(target)
