"""The Ansible side without a unit: ansible-lint (production profile) and --syntax-check clean,
every firmware_config file a role installs exists (and every one is installed), every systemd unit
passes `systemd-analyze verify` with nothing on stderr, and the rendered agent config is one the
agent accepts.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from agent.config import load_config

REPO = Path(__file__).resolve().parents[2]
ANSIBLE = REPO / "ansible"
FIRMWARE = REPO / "firmware_config"
BIN = Path(sys.executable).parent
NOT_INSTALLED = {"agent.example.toml", "demo.toml"}  # documentation and the demo


def tool(name: str) -> str:
    path = BIN / name
    if not path.exists():
        pytest.skip(f"{name} not installed (pip install -e '.[test]')")
    return str(path)


def run(argv: list[str], cwd: Path = ANSIBLE, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PATH": f"{BIN}:{os.environ.get('PATH', '')}", "ANSIBLE_NOCOLOR": "1",
           "NO_COLOR": "1", "ANSIBLE_LOCAL_TEMP": str(Path(os.environ.get("TMPDIR", "/tmp")))}
    return subprocess.run(argv, cwd=cwd, capture_output=True, text=True, timeout=timeout, env=env)


def test_ansible_lint_production_profile() -> None:
    done = run([tool("ansible-lint"), "--profile", "production", "--offline", "site.yml"], timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "Profile 'production' was required, and it passed" in done.stdout + done.stderr


def test_syntax_check() -> None:
    done = run([tool("ansible-playbook"), "--syntax-check", "-i", "inventory.example.yml", "site.yml"])
    assert done.returncode == 0 and "ERROR" not in done.stderr, done.stderr


def test_every_firmware_file_a_role_installs_exists_and_all_are_installed() -> None:
    used = set()
    for tasks in ANSIBLE.glob("roles/*/tasks/*.yml"):
        text = tasks.read_text()
        used |= set(re.findall(r"cctv_firmware_config \}\}/([\w./-]*[\w.-])(?![/\w{])", text))
        used |= set(re.findall(r"cctv_firmware_config \+ '/([\w./-]+)'", text))
        loops = re.findall(r'firmware_config }}/(\w+)/\{\{ item \}\}"[\s\S]*?loop:\n((?:\s+- \S+\n)+)', text)
        for loop in loops:
            used |= {f"{loop[0]}/{i.strip()[2:]}" for i in loop[1].splitlines() if i.strip()}
    used = {u for u in used if not u.endswith("/")}
    assert used, "no firmware_config file referenced"
    missing = sorted(u for u in used if not (FIRMWARE / u).is_file())
    assert not missing, missing
    every = {str(p.relative_to(FIRMWARE)) for p in FIRMWARE.rglob("*") if p.is_file()}
    unused = sorted(every - used - NOT_INSTALLED)
    assert not unused, f"in firmware_config but installed by no role: {unused}"


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze not installed "
                    "(apt-get install systemd, or make system-deps as root)")
def test_every_systemd_unit_verifies_with_nothing_on_stderr(tmp_path: Path) -> None:
    units = sorted(p for p in (FIRMWARE / "systemd").rglob("*")
                   if p.suffix in (".service", ".timer", ".socket", ".path", ".mount"))
    assert units
    for unit in units:
        text = unit.read_text()
        for exe in set(re.findall(r"^Exec\w+=[-@+!]*(/\S+)", text, re.M)):
            if not Path(exe).exists():  # the agent's venv is not on this machine
                text = text.replace(exe, shutil.which("true") or "/bin/true")
        copy = tmp_path / unit.name
        copy.write_text(text)
        done = subprocess.run(["systemd-analyze", "verify", str(copy)], capture_output=True, text=True,
                              timeout=60)
        assert done.returncode == 0 and done.stderr.strip() == "", f"{unit.name}: {done.stderr}"


def test_rendered_agent_config_is_accepted_by_the_agent(tmp_path: Path) -> None:
    """agent.toml.j2 rendered by Ansible itself with a unit's inventory values, then loaded by the
    agent's own config loader (which refuses unknown keys and bad values)."""
    out = tmp_path / "agent.toml"
    values = {
        "cctv_unit_id": "herts-mcu-001", "cctv_site": "High Street, outside No. 12",
        "cctv_control_room_url": "https://cctv.example.gov.uk", "cctv_s3_endpoint_url": "",
        "cctv_s3_region": "eu-west-2", "cctv_s3_bucket": "cctv-footage", "cctv_s3_prefix": "units",
        "cctv_retention_days": 28, "cctv_time_gps_fitted": True,
    }
    defaults = yaml.safe_load((ANSIBLE / "roles/cctv_agent/defaults/main.yml").read_text())
    play = [{"name": "Render", "hosts": "localhost", "connection": "local", "gather_facts": False,
             "vars": {**defaults, **values, "ansible_python_interpreter": sys.executable},
             "tasks": [{"name": "Render the agent config", "ansible.builtin.template": {
                 "src": str(FIRMWARE / "agent.toml.j2"), "dest": str(out), "mode": "0600"}}]}]
    (tmp_path / "play.yml").write_text(yaml.safe_dump(play))
    done = run([tool("ansible-playbook"), "-i", "localhost,", str(tmp_path / "play.yml")], cwd=tmp_path)
    assert done.returncode == 0, done.stdout[-2000:]
    signing = tmp_path / "signing-key.pem"
    signing.write_text("unused")
    text = out.read_text().replace("/etc/cctv-agent/signing-key.pem", str(signing))
    out.write_text(text)
    cfg = load_config(out, env={"CCTV_STATUS_TOKEN": "t", "CCTV_S3_ACCESS_KEY_ID": "a",
                                "CCTV_S3_SECRET_ACCESS_KEY": "s"})
    assert cfg.unit.id == "herts-mcu-001" and cfg.unit.site == "High Street, outside No. 12"
    assert cfg.camera.source == "picamera2" and cfg.retention.max_age_days == 28
    assert cfg.upload.endpoint_url is None and cfg.upload.bucket == "cctv-footage"
    assert cfg.status.url == "https://cctv.example.gov.uk" and cfg.status.gpsd == "127.0.0.1:2947"
