"""The real unit file (firmware_config/systemd/cctv-agent.service) under real systemd, in a
systemd-nspawn container of Debian bookworm: READY=1, the unprivileged user, segments, and a hung
camera that systemd's watchdog kills and restarts; then a clean `systemctl stop`.

The camera hangs the way a locked-up camera stack does: the looped clip is replaced by a FIFO
nobody writes to, so the agent's next open of the camera blocks for ever while the process lives.
WatchdogSec is shortened to 10 s by a drop-in (production: 30 s); everything else is the real unit.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import pytest

from tests.system import rootfs
from tests.waiting import wait_until

REPO = Path(__file__).resolve().parents[2]
CLIP = REPO / ".." / "shared" / "data" / "bgslibrary_video02.avi"  # 30 s, 320x240, 25 fps
UNIT = REPO / "firmware_config" / "systemd" / "cctv-agent.service"
SERVICE = "cctv-agent.service"
WATCHDOG_S = 10
STOP_TIMEOUT_S = 30  # TimeoutStopSec of the unit

AGENT_TOML = """\
[unit]
id = "herts-mcu-001"
site = "nspawn test"

[camera]
source = "file"
device = "/srv/cctv-test/clip.avi"
loop = true
pace = "realtime"
width = 320
height = 240
fps = 25
analysis_width = 160
analysis_height = 120
stall_timeout_s = 2

[recording]
segment_seconds = 2
bitrate_kbps = 300

[upload]
enabled = false

[status]
enabled = false   # no control room here: READY=1 and the watchdog still run
gpsd = ""
modem = false
"""
SECRETS_ENV = "CCTV_STATUS_TOKEN=not-a-real-token\n"
OVERRIDE = f"[Service]\n# test only: a short watchdog (production: 30 s)\nWatchdogSec={WATCHDOG_S}\n"

T = TypeVar("T")


def wait_for(probe: Callable[[], T], timeout: float, what: str, interval: float = 0.5) -> T:
    return wait_until(probe, timeout, what, interval=interval)


def prepare_share(share: Path, wheel_dir: Path) -> Path:
    """What the container sees at /srv/cctv-test: the clip, the project wheel, unit and configs."""
    share.mkdir(mode=0o755)
    share.chmod(0o755)
    shutil.copyfile(CLIP, share / "clip.avi")
    (share / "clip.avi").chmod(0o644)
    wheelhouse = rootfs.cached_rootfs() / rootfs.WHEELS_IN_ROOT
    wheel = rootfs.project_wheel(wheelhouse, wheel_dir)
    shutil.copyfile(wheel, share / wheel.name)
    shutil.copyfile(UNIT, share / SERVICE)
    (share / "agent.toml").write_text(AGENT_TOML)
    (share / "secrets.env").write_text(SECRETS_ENV)
    (share / "watchdog.conf").write_text(OVERRIDE)
    return share / wheel.name


def install(box: rootfs.Container, wheel: Path) -> None:
    """The layout provisioning installs (docs/status.md), with this checkout's code. Enabled (as
    provisioning does), the unit stays loaded once stopped, so its exit status can be read."""
    box.sh(f"""set -e
{rootfs.VENV}/bin/pip install -q --no-index --no-deps --force-reinstall /srv/cctv-test/{wheel.name}
install -d -m 0755 /etc/cctv-agent /etc/systemd/system/{SERVICE}.d
install -o root -g cctv -m 0640 /srv/cctv-test/agent.toml /etc/cctv-agent/agent.toml
install -o root -g root -m 0600 /srv/cctv-test/secrets.env /etc/cctv-agent/secrets.env
install -m 0644 /srv/cctv-test/{SERVICE} /etc/systemd/system/{SERVICE}
install -m 0644 /srv/cctv-test/watchdog.conf /etc/systemd/system/{SERVICE}.d/watchdog.conf
systemctl daemon-reload
systemctl enable {SERVICE}
""", timeout=180)


def journal(box: rootfs.Container) -> str:
    return box.run(["journalctl", "--no-pager", "-o", "cat", "-u", SERVICE], check=False).stdout


def segments(box: rootfs.Container) -> list[str]:
    """'owner path' of every finished segment under the state directory."""
    out = box.run(["find", "/var/lib/cctv-agent", "-name", "*.mp4", "-printf", "%u %p\n"], check=False)
    return out.stdout.split("\n")[:-1]


def process_ids(box: rootfs.Container, pid: str) -> tuple[str, list[str]]:
    """(real uid, supplementary gids) of a process inside the container."""
    status = box.run(["cat", f"/proc/{pid}/status"]).stdout
    fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
    return fields["Uid"].split()[0], fields["Groups"].split()


@pytest.mark.slow
def test_unit_runs_and_self_heals_under_real_systemd(tmp_path: Path) -> None:
    reason = rootfs.missing_requirement()
    if reason:
        pytest.skip(reason)
    if not CLIP.is_file():
        pytest.skip(f"real footage absent: {CLIP}")
    wheel = prepare_share(tmp_path / "share", tmp_path / "wheel")
    try:
        with rootfs.booted(rootfs.cached_rootfs(), tmp_path / "share", tmp_path / "nspawn.log") as box:
            install(box, wheel)
            check_start(box)
            check_watchdog_restart(box, tmp_path / "share")
            check_clean_stop(box)
    except rootfs.BootFailed as err:
        pytest.skip(f"systemd-nspawn cannot boot here: {err}")


def check_start(box: rootfs.Container) -> None:
    # Type=notify: `systemctl start` returns, and the unit is active (running), only after READY=1
    started = box.run(["systemctl", "start", SERVICE], check=False, timeout=150)
    assert started.returncode == 0, f"{started.stderr}\n{journal(box)}"
    props = box.show(SERVICE, "Type", "ActiveState", "SubState", "MainPID", "WatchdogUSec", "NRestarts",
                     "StatusText")
    assert (props["Type"], props["ActiveState"], props["SubState"]) == ("notify", "active", "running"), props
    assert props["WatchdogUSec"] == f"{WATCHDOG_S}s" and props["NRestarts"] == "0", props
    cctv = box.run(["getent", "passwd", "cctv"]).stdout.split(":")
    video_gid = box.run(["getent", "group", "video"]).stdout.split(":")[2]
    uid, groups = process_ids(box, props["MainPID"])
    assert uid == cctv[2] != "0" and video_gid in groups, (uid, groups, cctv)

    found = wait_for(lambda: len(segments(box)) >= 2 and segments(box), 40, "two finished segments")
    assert all(line.startswith("cctv /var/lib/cctv-agent/") for line in found), found
    # under python -OO, its bytecode cached where the unit lets it write (the venv is read-only)
    cached = box.run(["find", "/var/cache/cctv-agent/pycache", "-name", "*.opt-2.pyc", "-user", "cctv"],
                     check=False).stdout.split()
    assert any(p.endswith("agent/runner.cpython-311.opt-2.pyc") for p in cached), cached[:5]
    # the watchdog is being fed: still active well past WatchdogSec
    time.sleep(WATCHDOG_S + 2)
    props = box.show(SERVICE, "ActiveState", "MainPID", "NRestarts", "StatusText")
    assert (props["ActiveState"], props["NRestarts"]) == ("active", "0"), f"{props}\n{journal(box)}"
    assert not props["StatusText"].startswith("unhealthy"), props


def check_watchdog_restart(box: rootfs.Container, share: Path) -> None:
    before = box.show(SERVICE, "MainPID", "NRestarts")
    # the camera hangs: at the end of this loop pass the agent reopens the clip, now a silent FIFO
    fifo = share / "hung-camera.fifo"
    os.mkfifo(fifo, 0o644)
    os.replace(fifo, share / "clip.avi")
    hung = wait_for(lambda: (p := box.show(SERVICE, "StatusText", "MainPID", "NRestarts"))["StatusText"]
                    .startswith("unhealthy: camera") and p, 60, "the agent to judge the camera hung")
    # alive but hung: same process, not restarted yet; only the watchdog can save it now
    assert (hung["MainPID"], hung["NRestarts"]) == (before["MainPID"], "0"), hung
    hung_at = time.monotonic()
    # the camera comes back for the next process (as after a power-cycle of the camera stack)
    shutil.copyfile(CLIP, share / "clip.avi.new")
    (share / "clip.avi.new").chmod(0o644)
    os.replace(share / "clip.avi.new", share / "clip.avi")

    wait_for(lambda: box.show(SERVICE, "NRestarts")["NRestarts"] == "1", WATCHDOG_S + 20,
             "systemd to restart the agent")
    assert time.monotonic() - hung_at < WATCHDOG_S + 15
    log = journal(box)
    assert "Watchdog timeout" in log, log
    assert f"Killing process {before['MainPID']} " in log and "SIGABRT" in log, log
    after = wait_for(lambda: (p := box.show(SERVICE, "ActiveState", "SubState", "MainPID"))["SubState"]
                     == "running" and p, 90, "the restarted agent to report READY=1")
    assert after["MainPID"] != before["MainPID"] and after["ActiveState"] == "active", after
    counted = len(segments(box))
    wait_for(lambda: len(segments(box)) > counted, 30, "the restarted agent to write segments")


def check_clean_stop(box: rootfs.Container) -> None:
    restarts = box.show(SERVICE, "NRestarts")["NRestarts"]
    t0 = time.monotonic()
    stopped = box.run(["systemctl", "stop", SERVICE], check=False, timeout=STOP_TIMEOUT_S + 30)
    took = time.monotonic() - t0
    assert stopped.returncode == 0, stopped.stderr
    props = box.show(SERVICE, "ActiveState", "Result", "ExecMainCode", "ExecMainStatus", "NRestarts")
    # ExecMainCode 1 = exited (not killed by a signal), status 0: SIGTERM was handled cleanly
    assert (props["ActiveState"], props["Result"]) == ("inactive", "success"), f"{props}\n{journal(box)}"
    assert (props["ExecMainCode"], props["ExecMainStatus"]) == ("1", "0"), props
    assert props["NRestarts"] == restarts, props
    assert took < STOP_TIMEOUT_S, f"stop took {took:.1f} s"
