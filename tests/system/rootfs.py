"""A minimal Debian bookworm root with the agent's venv, cached between runs, and a booted
systemd-nspawn container over it (real systemd as PID 1) that tests drive through nsenter.

The cached root is never changed by a test: containers boot it with --volatile=overlay (a tmpfs
over a read-only root, all inside nspawn's own mount namespace), so nothing stays mounted on the host.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import tomllib
import zipfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
CACHE_PARENT = Path("/var/tmp")
PACKAGES = "systemd,systemd-sysv,dbus,python3,python3-venv,ca-certificates"
WHEELS_IN_ROOT = Path("var/cache/cctv-agent-wheels")  # relative to the root
VENV = "/opt/cctv-agent/venv"
TOOLS = ("debootstrap", "systemd-nspawn", "nsenter")
EXPORT_SOURCES = REPO / "ansible/roles/cctv_agent/files/export_sources.py"
RECIPE = 1  # bump when build_root() changes what goes into the root


class BootFailed(RuntimeError):
    """systemd-nspawn could not boot the root here (no cgroups, no namespaces ...)."""


def missing_requirement() -> str | None:
    """Why a container cannot be built or booted on this machine, or None."""
    if os.geteuid() != 0:
        return "needs root (debootstrap and systemd-nspawn)"
    absent = [t for t in TOOLS if shutil.which(t) is None]
    if absent:
        return f"{', '.join(absent)} not installed (make system-deps installs debootstrap systemd-container)"
    if sys.version_info[:2] != (3, 11):
        return "host wheels must match bookworm's python3 3.11"
    if apt_mirror() is None:
        return "no Debian bookworm mirror in the machine's apt sources"
    return None


def apt_mirror(apt: Path = Path("/etc/apt")) -> str | None:
    """The first bookworm mirror in /etc/apt (deb822 .sources or one-line .list), not the security one."""
    files = [apt / "sources.list", *sorted((apt / "sources.list.d").glob("*.sources")),
             *sorted((apt / "sources.list.d").glob("*.list"))]
    for f in files:
        try:
            text = f.read_text()
        except OSError:
            continue
        for stanza in re.split(r"\n\s*\n", text):
            uris = re.search(r"^URIs:\s*(\S+)", stanza, re.M)
            suites = re.search(r"^Suites:\s*(.+)$", stanza, re.M)
            if uris and suites and "bookworm" in suites.group(1).split():
                return uris.group(1)
        for line in text.splitlines():
            m = re.match(r"\s*deb\s+(?:\[[^]]*\]\s+)?(\S+)\s+bookworm\s", line)
            if m:
                return m.group(1)
    return None


def agent_requirements() -> bytes:
    """What of pyproject.toml goes into a unit's venv: the agent's dependencies, the build system and
    the Python it needs (test tools, extras for the control room or the version number do not)."""
    meta = tomllib.loads((REPO / "pyproject.toml").read_text())
    wanted = {"dependencies": meta["project"].get("dependencies", []),
              "requires-python": meta["project"].get("requires-python"), "build": meta.get("build-system")}
    return json.dumps(wanted, sort_keys=True).encode()


def cache_key() -> str:
    """Changes when the agent's requirements or the recipe change (the project itself is
    installed into each container at test time, so code changes need no rebuild)."""
    h = hashlib.sha256(agent_requirements())
    h.update(f"{RECIPE} {PACKAGES} {VENV} {WHEELS_IN_ROOT}".encode())
    return h.hexdigest()[:12]


def run(argv: Sequence[str], timeout: float, **kw) -> subprocess.CompletedProcess[str]:
    """Run a host command; on failure raise with its output (the build is not worth hiding)."""
    done = subprocess.run(list(argv), capture_output=True, text=True, timeout=timeout, **kw)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(map(str, argv))} exited {done.returncode}:\n"
                           f"{done.stdout[-2000:]}\n{done.stderr[-2000:]}")
    return done


def exported_source(dest: Path) -> Path:
    """The project's sources alone, exported as the playbook does before building its wheel: builds
    never write into the checkout, so parallel tests building the project cannot collide there."""
    run([sys.executable, str(EXPORT_SOURCES), str(REPO), str(dest)], timeout=120)
    return dest


def build_wheelhouse(dest: Path) -> None:
    """Wheels of the project, its agent dependencies and setuptools (to build the project again
    later without PyPI), with the host's pip (cp311 manylinux wheels run on bookworm)."""
    with tempfile.TemporaryDirectory(prefix="mobile-cctv-src-") as tmp:
        src = exported_source(Path(tmp) / "src")
        run([sys.executable, "-m", "pip", "wheel", "-q", "-w", str(dest), str(src), "setuptools>=77"],
            timeout=300)


_NOT_SOURCE = shutil.ignore_patterns(".git", ".venv", "build", "*.egg-info", "__pycache__", "demo-*",
                                     ".pytest_cache", ".ruff_cache", "node_modules", "instance")


def project_wheel(wheelhouse: Path, dest: Path) -> Path:
    """The current checkout as a wheel, built offline against the cached wheelhouse, from a private
    copy of the sources: setuptools builds in the source tree's build/, which a parallel build or
    test must not share (a wheel zipped while another build cleaned build/ lacked modules)."""
    src = dest / "src"
    shutil.copytree(REPO, src, ignore=_NOT_SOURCE)
    run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-index", "--find-links",
         str(wheelhouse), "-w", str(dest), str(src)], timeout=120)
    wheel = next(dest.glob("mobile_cctv-*.whl"))
    with zipfile.ZipFile(wheel) as built:
        names = set(built.namelist())
    missing = [m for m in ("agent/cli.py", "agent/runner.py", "protocol/__init__.py") if m not in names]
    if missing:
        raise RuntimeError(f"the project wheel {wheel.name} lacks {', '.join(missing)}")
    return wheel


def in_root(root: Path, argv: Sequence[str], timeout: float = 300) -> None:
    """A command inside the root (not booted), no network."""
    run(["systemd-nspawn", "-q", "--register=no", "--keep-unit", "--private-network", "-D", str(root),
         *argv], timeout=timeout)


def cached_rootfs() -> Path:
    """The cached root, built once: debootstrap, the cctv user, the venv with the project and deps.
    Built under a temporary name and renamed when complete, under a lock against a parallel build."""
    final = CACHE_PARENT / f"mobile-cctv-rootfs-{cache_key()}"
    if final.is_dir():
        return final
    with open(CACHE_PARENT / "mobile-cctv-rootfs.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if final.is_dir():
            return final
        for stale in CACHE_PARENT.glob(f"{final.name}.building-*"):  # a killed earlier build
            remove_root(stale)
        tmp = CACHE_PARENT / f"{final.name}.building-{os.getpid()}"
        try:
            build_root(tmp)
        except BaseException:
            remove_root(tmp)
            raise
        tmp.rename(final)
    return final


def mounts_under(path: Path) -> list[str]:
    """Mount points at or below path, deepest first (a killed debootstrap leaves proc and sys)."""
    prefix = str(path.resolve())
    found = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        point = line.split()[4].encode().decode("unicode_escape")
        if point == prefix or point.startswith(prefix + "/"):
            found.append(point)
    return sorted(found, key=len, reverse=True)


def remove_root(root: Path) -> None:
    """Unmount what a broken build left mounted inside, then delete it; never delete across a mount."""
    for point in mounts_under(root):
        subprocess.run(["umount", "--lazy", point], capture_output=True, timeout=30)
    left = mounts_under(root)
    if left:
        raise RuntimeError(f"not deleting {root}: still mounted: {', '.join(left)}")
    shutil.rmtree(root, ignore_errors=True)


def build_root(root: Path) -> None:
    run(["debootstrap", "--variant=minbase", f"--include={PACKAGES}", "bookworm", str(root),
         str(apt_mirror())], timeout=600)
    wheels = root / WHEELS_IN_ROOT
    wheels.mkdir(parents=True)
    build_wheelhouse(wheels)
    in_root(root, ["useradd", "--system", "--user-group", "--groups", "video", "--home-dir",
                   "/var/lib/cctv-agent", "--no-create-home", "--shell", "/usr/sbin/nologin", "cctv"])
    in_root(root, ["python3", "-m", "venv", "--system-site-packages", VENV])
    in_root(root, [f"{VENV}/bin/pip", "install", "-q", "--no-index", "--find-links",
                   f"/{WHEELS_IN_ROOT}", "mobile-cctv"], timeout=600)
    in_root(root, ["apt-get", "clean"])


class Container:
    """A booted container: real systemd as PID 1, private network, a volatile overlay root,
    `share` bind-mounted read-write at /srv/cctv-test. Commands run inside via nsenter."""

    def __init__(self, root: Path, share: Path, log: Path, private_network: bool = True) -> None:
        self.root, self.share, self.log_path = root, share, log
        self.private_network = private_network  # False: the host's network (nspawn drops CAP_NET_ADMIN)
        self.proc: subprocess.Popen[bytes] | None = None
        self.leader = 0

    def boot(self, timeout: float = 60) -> None:
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(
                ["systemd-nspawn", "-q", "-b", "--register=no", "--keep-unit",
                 *(["--private-network"] if self.private_network else []),
                 "--volatile=overlay", f"--bind={self.share}:/srv/cctv-test", "--console=pipe",
                 "-D", str(self.root)],
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + timeout
        state = ""
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise BootFailed(f"systemd-nspawn exited {self.proc.returncode}: {self.log_tail()}")
            if not self.leader:
                self.leader = self._find_leader()
            if self.leader:
                state = self.sh("systemctl is-system-running", check=False).stdout.strip()
                if state in ("running", "degraded"):
                    return
            time.sleep(0.3)
        raise BootFailed(f"not booted after {timeout:.0f} s (state {state or 'unknown'}): {self.log_tail()}")

    def _find_leader(self) -> int:
        assert self.proc is not None
        pid = self.proc.pid
        try:
            children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
        except OSError:
            return 0
        for child in children:  # the container's PID 1 runs /usr/lib/systemd/systemd
            try:
                if Path(f"/proc/{child}/comm").read_text().strip() == "systemd":
                    return int(child)
            except OSError:
                continue
        return 0

    def log_tail(self) -> str:
        try:
            return " | ".join(self.log_path.read_text(errors="replace").strip().splitlines()[-5:])
        except OSError:
            return ""

    def run(self, argv: Sequence[str], check: bool = True,
            timeout: float = 60) -> subprocess.CompletedProcess[str]:
        """argv inside the container (all its namespaces: its systemd, its files, its network)."""
        done = subprocess.run(["nsenter", "-t", str(self.leader), "-a", *argv], capture_output=True,
                              text=True, timeout=timeout)
        if check and done.returncode != 0:
            raise AssertionError(f"in container: {' '.join(argv)} exited {done.returncode}: "
                                 f"{done.stdout[-1500:]} {done.stderr[-1500:]}")
        return done

    def sh(self, script: str, check: bool = True, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        return self.run(["/bin/sh", "-c", script], check=check, timeout=timeout)

    def show(self, unit: str, *props: str) -> dict[str, str]:
        out = self.run(["systemctl", "show", unit, *(f"--property={p}" for p in props)]).stdout
        return dict(line.split("=", 1) for line in out.splitlines() if "=" in line)

    def poweroff(self, timeout: float = 30) -> None:
        """SIGTERM makes nspawn ask the container's systemd to power off; a second one kills it."""
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)


@contextmanager
def booted(root: Path, share: Path, log: Path, private_network: bool = True,
           timeout: float = 60) -> Iterator[Container]:
    box = Container(root, share, log, private_network)
    try:
        box.boot(timeout)
        yield box
    finally:
        box.poweroff()
