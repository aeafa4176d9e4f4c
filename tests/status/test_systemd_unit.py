"""firmware_config/systemd/cctv-agent.service: `systemd-analyze verify` with any stderr output
counted as failure (it exits 0 on typos), plus the hardening and self-healing settings we rely on."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

UNIT = Path(__file__).resolve().parents[2] / "firmware_config" / "systemd" / "cctv-agent.service"
INSTALLED_EXEC = "/opt/cctv-agent/venv/bin/cctv-agent"

needs_systemd = pytest.mark.skipif(
    shutil.which("systemd-analyze") is None,
    reason="systemd-analyze not installed (apt-get install systemd, or `make system-deps` as root)",
)


def settings(text: str) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith(("#", ";", "[")) and "=" in line:
            key, _, value = line.partition("=")
            out.setdefault(key.strip(), []).append(value.strip())
    return out


def verify(unit_text: str, folder: Path) -> tuple[int, str]:
    """systemd-analyze verify on a copy whose ExecStart points at an executable that exists here."""
    exe = Path(sys.executable).parent / "cctv-agent"
    folder.mkdir(parents=True, exist_ok=True)
    copy = folder / "cctv-agent.service"
    copy.write_text(unit_text.replace(INSTALLED_EXEC, str(exe if exe.exists() else shutil.which("true"))))
    done = subprocess.run(["systemd-analyze", "verify", str(copy)], capture_output=True, text=True,
                          timeout=60, check=False)
    return done.returncode, done.stderr.strip()


@needs_systemd
def test_unit_verifies_without_any_warning(tmp_path: Path) -> None:
    rc, stderr = verify(UNIT.read_text(), tmp_path)
    assert rc == 0 and stderr == "", stderr


@needs_systemd
@pytest.mark.parametrize(("good", "bad"), [("Restart=always", "Restart=allways"),
                                           ("ProtectHome=yes", "ProtectHomee=yes")])
def test_the_check_catches_typos_that_exit_0(tmp_path: Path, good: str, bad: str) -> None:
    text = UNIT.read_text()
    assert good in text
    rc, stderr = verify(text.replace(good, bad), tmp_path)
    assert rc == 0  # why exit status alone proves nothing
    assert stderr != ""


def test_self_healing_and_least_privilege_settings() -> None:
    s = settings(UNIT.read_text())
    assert s["Type"] == ["notify"] and s["NotifyAccess"] == ["main"]
    assert int(s["WatchdogSec"][0]) >= 10
    assert s["Restart"][0] in ("always", "on-failure") and s["StartLimitBurst"]
    assert s["ExecStart"][0].startswith(INSTALLED_EXEC + " run --config ")
    assert s["User"] == ["cctv"] and "video" in s["SupplementaryGroups"][0].split()
    assert s["CapabilityBoundingSet"] == [""] and s["AmbientCapabilities"] == [""]
    for key in ("NoNewPrivileges", "PrivateTmp", "ProtectHome", "RestrictSUIDSGID"):
        assert s[key] == ["yes"], key
    assert s["ProtectSystem"] == ["strict"] and s["ReadWritePaths"] == ["/var/lib/cctv-agent"]
    assert s["EnvironmentFile"] == ["/etc/cctv-agent/secrets.env"]  # secrets stay out of the TOML
    # the probes read /proc/meminfo, loadavg, uptime and boot_id; cameras need /dev access
    assert "ProcSubset" not in s and "PrivateDevices" not in s and "DevicePolicy" not in s
