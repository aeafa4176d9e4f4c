"""Probes read recorded Pi /sys and /proc trees, `mmcli -J`, chrony and gpsd output; absent
hardware gives None, never an exception."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from agent.status.probes import Probes, parse_chrony_tracking, run_command
from tests.servers import free_port
from tests.status.conftest import FIXTURES, RecordedRunner, fixture_text

PI_ROOT = FIXTURES / "pi4"


def test_pi_sys_and_proc_fixtures(tmp_path: Path, pi_runner: RecordedRunner) -> None:
    p = Probes(root=PI_ROOT, run=pi_runner, gpsd=None)
    system = p.system()
    assert system["cpu_temp_c"] == 51.5  # cpu-thermal zone preferred over gpu-thermal
    # 0x50005: under-voltage now (bit 0) and throttled now (bit 2), plus the since-boot bits
    assert system["undervoltage"] is True and system["throttled"] is True
    assert system["throttled_flags"] == "0x50005"
    assert system["load1"] == 0.42
    assert system["mem_total_bytes"] == 3884428 * 1024
    assert system["mem_available_bytes"] == 2917040 * 1024
    assert p.boot_id() == "5c7e2a9e-1f43-4d7b-9a51-0c4f8e2d6b13"
    assert p.uptime_s() == 183245
    assert not any(argv[0] == "vcgencmd" for argv, _ in pi_runner.calls)  # sysfs read first


def test_throttle_flags_from_vcgencmd_when_sysfs_is_absent(tmp_path: Path) -> None:
    runner = RecordedRunner({("vcgencmd", "get_throttled"): "throttled=0x0\n"})
    flags = Probes(root=tmp_path, run=runner).throttled()
    assert flags == {"undervoltage": False, "throttled": False, "throttled_flags": "0x0"}


def test_modem_from_recorded_mmcli(pi_runner: RecordedRunner) -> None:
    modem = Probes(run=pi_runner, gpsd=None).modem()
    assert modem == {"signal_percent": 67, "operator": "EE", "technology": "lte", "state": "connected"}
    assert all(timeout > 0 for _, timeout in pi_runner.calls)  # every command has a timeout


def test_modem_searching_and_no_modem() -> None:
    searching = RecordedRunner(
        {
            ("mmcli", "-J", "-L"): fixture_text("mmcli/list.json"),
            ("mmcli", "-J", "-m", "0"): fixture_text("mmcli/modem0-searching.json"),
        }
    )
    assert Probes(run=searching).modem() == {
        "signal_percent": 0, "operator": None, "technology": None, "state": "searching"
    }
    none = RecordedRunner({("mmcli", "-J", "-L"): fixture_text("mmcli/list-empty.json")})
    assert Probes(run=none).modem() is None


@pytest.mark.parametrize("garbage", ["", "not json", '{"modem-list": ["x"]}', "[1, 2"])
def test_modem_garbage_gives_none(garbage: str) -> None:
    runner = RecordedRunner({("mmcli", "-J", "-L"): garbage, ("mmcli", "-J", "-m", "x"): "{}"})
    assert Probes(run=runner).modem() is None


def test_clock_from_chrony_synced_and_unsynced() -> None:
    synced = parse_chrony_tracking(fixture_text("chrony/tracking-synced.csv"))
    # chrony's correction is +0.000212 s (system clock slow), so the clock is 0.000212 s behind
    assert synced == {"synced": True, "offset_s": -0.000212, "source": "chrony"}
    unsynced = parse_chrony_tracking(fixture_text("chrony/tracking-unsynced.csv"))
    assert unsynced["synced"] is False


def test_clock_falls_back_to_timedatectl() -> None:
    runner = RecordedRunner({("timedatectl", "show"): fixture_text("timedatectl/show.txt")})
    assert Probes(run=runner).clock() == {"synced": True, "offset_s": None, "source": "timedatectl"}


def test_gps_fix_from_gpsd(fake_gpsd) -> None:
    server = fake_gpsd("fix3d.jsonl")
    gps = Probes(gpsd=server.addr, timeout_s=3.0).gps()
    assert gps == {"fix": "3d", "lat": 51.705182, "lon": -0.278342, "time": "2026-11-28T13:04:26.000Z"}
    assert server.commands and server.commands[0].startswith('?WATCH={"enable":true,"json":true}')


def test_gps_without_fix_and_without_device(fake_gpsd) -> None:
    nofix = fake_gpsd("nofix.jsonl")
    assert Probes(gpsd=nofix.addr).gps() == {"fix": "none", "lat": None, "lon": None,
                                            "time": "2026-11-28T13:04:26.000Z"}
    # gpsd running with no receiver never sends a TPV: the probe gives up at its timeout
    nodevice = fake_gpsd("nodevice.jsonl", hold=3.0)
    assert Probes(gpsd=nodevice.addr, timeout_s=0.5).gps() == {
        "fix": "none", "lat": None, "lon": None, "time": None
    }


def test_nothing_present_gives_none_everywhere(tmp_path: Path) -> None:
    """A PC or a Pi without modem, GPS, chrony or firmware files: every probe is None."""
    p = Probes(root=tmp_path, run=RecordedRunner({}), gpsd=("127.0.0.1", free_port()), timeout_s=0.5)
    assert p.cpu_temp_c() is None and p.throttled() is None and p.load1() is None
    assert p.memory() is None and p.boot_id() is None and p.uptime_s() is None
    assert p.clock() is None and p.modem() is None and p.gps() is None
    assert p.disk(tmp_path / "missing") is None
    assert set(p.system().values()) == {None}


def test_disk_of_a_real_folder(tmp_path: Path) -> None:
    disk = Probes().disk(tmp_path)
    assert disk is not None and 0 < disk["free_bytes"] <= disk["total_bytes"]


def test_run_command_timeout_missing_and_failure() -> None:
    assert run_command([sys.executable, "-c", "print('hi')"], 5.0) == "hi\n"
    assert run_command(["/nonexistent/cmd"], 1.0) is None
    assert run_command([sys.executable, "-c", "raise SystemExit(3)"], 5.0) is None
    assert run_command([sys.executable, "-c", "import time; time.sleep(30)"], 0.3) is None
    with pytest.raises(subprocess.TimeoutExpired):  # the guard above is what saves us
        subprocess.run([sys.executable, "-c", "import time; time.sleep(30)"], timeout=0.1)


def test_real_machine_probes_never_raise() -> None:
    p = Probes(timeout_s=1.0)
    for value in (p.system(), p.clock(), p.modem(), p.boot_id(), p.uptime_s()):
        assert value is None or isinstance(value, dict | str | int)
