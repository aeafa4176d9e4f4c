"""Probes of the unit's hardware and OS (disk, clock sync, temperature, power, load, 4G modem, GPS).

Read by heartbeat.py and `cctv-agent status`. Every probe is optional: absent hardware, a missing
command, a timeout or odd output gives None, never an exception. Paths and the command runner are
injectable so tests can use /sys and /proc fixtures and recorded command output.
"""

from __future__ import annotations

import functools
import json
import logging
import shutil
import socket
import subprocess
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

log = logging.getLogger(__name__)

Runner = Callable[[Sequence[str], float], "str | None"]
T = TypeVar("T")

THERMAL_PREFERRED = ("cpu-thermal", "cpu_thermal", "x86_pkg_temp", "soc_thermal", "soc-thermal")
PI_THROTTLED_SYSFS = "sys/devices/platform/soc/soc:firmware/get_throttled"
UNDERVOLTAGE_NOW = 1 << 0
THROTTLED_NOW = 1 << 2
GPS_FIX = {0: "none", 1: "none", 2: "2d", 3: "3d"}
MAX_TEXT = 32  # longest operator name / technology kept (keeps the heartbeat under 2 KB)


def run_command(argv: Sequence[str], timeout_s: float) -> str | None:
    """Run a command with a timeout; stdout on success, None if missing, failing or too slow."""
    try:
        done = subprocess.run(list(argv), capture_output=True, text=True, timeout=timeout_s, check=False)
    except (OSError, subprocess.TimeoutExpired, ValueError) as err:
        log.debug("%s: %s", argv[0], err)
        return None
    return done.stdout if done.returncode == 0 else None


def optional(fn: Callable[..., T]) -> Callable[..., T | None]:
    """Turn any failure of a probe into None (logged at debug level): a probe never crashes the agent."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> T | None:
        try:
            return fn(*args, **kwargs)
        except Exception as err:  # a probe must never take the agent down
            log.debug("probe %s failed: %s", fn.__name__, err)
            return None

    return wrapper


def _short(value: Any) -> str | None:
    if not isinstance(value, str) or value in ("", "--", "unknown"):
        return None
    return value[:MAX_TEXT]


class Probes:
    """The unit's probes; `root` prefixes /sys and /proc, `run` runs external commands."""

    def __init__(
        self,
        root: Path = Path("/"),
        run: Runner = run_command,
        gpsd: tuple[str, int] | None = ("127.0.0.1", 2947),
        modem: bool = True,
        timeout_s: float = 3.0,
    ) -> None:
        self.root = root
        self.run = run
        self.gpsd = gpsd
        self.use_modem = modem
        self.timeout_s = timeout_s

    @classmethod
    def from_config(cls, gpsd: str, modem: bool, **kwargs: Any) -> Probes:
        """Probes from the `status` config: gpsd 'host:port' ('' = no GPS), modem on/off."""
        addr = None
        if gpsd:
            host, _, port = gpsd.rpartition(":")
            addr = (host or "127.0.0.1", int(port))
        return cls(gpsd=addr, modem=modem, **kwargs)

    def _read(self, rel: str) -> str:
        return (self.root / rel).read_text().strip()

    # -- disk and OS -------------------------------------------------------------------------

    @optional
    def disk(self, data_dir: Path) -> dict[str, int]:
        usage = shutil.disk_usage(data_dir)
        return {"total_bytes": usage.total, "free_bytes": usage.free}

    @optional
    def boot_id(self) -> str:
        return self._read("proc/sys/kernel/random/boot_id")[:64]

    @optional
    def uptime_s(self) -> int:
        return int(float(self._read("proc/uptime").split()[0]))

    @optional
    def load1(self) -> float:
        return round(float(self._read("proc/loadavg").split()[0]), 2)

    @optional
    def memory(self) -> dict[str, int]:
        fields: dict[str, int] = {}
        for line in self._read("proc/meminfo").splitlines():
            key, _, rest = line.partition(":")
            if key in ("MemTotal", "MemAvailable"):
                fields[key] = int(rest.split()[0]) * 1024  # kB
        return {"mem_total_bytes": fields["MemTotal"], "mem_available_bytes": fields["MemAvailable"]}

    @optional
    def cpu_temp_c(self) -> float:
        zones = sorted((self.root / "sys/class/thermal").glob("thermal_zone*"))
        if not zones:
            raise FileNotFoundError("no thermal zones")

        def kind(zone: Path) -> str:
            try:
                return (zone / "type").read_text().strip()
            except OSError:
                return ""

        preferred = [z for z in zones if kind(z) in THERMAL_PREFERRED]
        for zone in preferred + zones:
            try:
                return round(int((zone / "temp").read_text().strip()) / 1000.0, 1)
            except (OSError, ValueError):
                continue
        raise ValueError("no readable thermal zone")

    @optional
    def throttled(self) -> dict[str, Any]:
        """Raspberry Pi firmware flags: bit 0 under-voltage now, bit 2 throttled now (16-19: since boot)."""
        try:
            value = int(self._read(PI_THROTTLED_SYSFS), 16)
        except (OSError, ValueError):
            out = self.run(["vcgencmd", "get_throttled"], self.timeout_s)
            if out is None:
                raise FileNotFoundError("no get_throttled") from None
            value = int(out.strip().partition("=")[2], 16)
        return {
            "undervoltage": bool(value & UNDERVOLTAGE_NOW),
            "throttled": bool(value & THROTTLED_NOW),
            "throttled_flags": hex(value),
        }

    def system(self) -> dict[str, Any]:
        """The `system` block of the heartbeat; each field None when its probe has nothing."""
        flags = self.throttled() or {}
        memory = self.memory() or {}
        return {
            "cpu_temp_c": self.cpu_temp_c(),
            "undervoltage": flags.get("undervoltage"),
            "throttled": flags.get("throttled"),
            "throttled_flags": flags.get("throttled_flags"),
            "load1": self.load1(),
            "mem_total_bytes": memory.get("mem_total_bytes"),
            "mem_available_bytes": memory.get("mem_available_bytes"),
        }

    # -- clock sync --------------------------------------------------------------------------

    @optional
    def clock(self) -> dict[str, Any]:
        """Clock sync from chrony (`chronyc -c tracking`), else systemd (`timedatectl show`)."""
        out = self.run(["chronyc", "-c", "tracking"], self.timeout_s)
        if out and out.strip():
            return parse_chrony_tracking(out)
        out = self.run(["timedatectl", "show"], self.timeout_s)
        if out is None:
            raise FileNotFoundError("neither chronyc nor timedatectl answered")
        props = dict(line.split("=", 1) for line in out.splitlines() if "=" in line)
        if "NTPSynchronized" not in props:
            raise ValueError("timedatectl: no NTPSynchronized")
        return {"synced": props["NTPSynchronized"] == "yes", "offset_s": None, "source": "timedatectl"}

    # -- 4G modem ----------------------------------------------------------------------------

    @optional
    def modem(self) -> dict[str, Any] | None:
        """First modem known to ModemManager: `mmcli -J -L`, then `mmcli -J -m N`."""
        if not self.use_modem:
            return None
        listing = self.run(["mmcli", "-J", "-L"], self.timeout_s)
        if listing is None:
            raise FileNotFoundError("mmcli absent or ModemManager not running")
        modems = json.loads(listing).get("modem-list") or []
        if not modems:
            return None
        index = str(modems[0]).rsplit("/", 1)[-1]
        detail = self.run(["mmcli", "-J", "-m", index], self.timeout_s)
        if detail is None:
            raise FileNotFoundError(f"mmcli -m {index} failed")
        return parse_mmcli_modem(json.loads(detail))

    # -- GPS ---------------------------------------------------------------------------------

    @optional
    def gps(self) -> dict[str, Any] | None:
        """Latest fix from gpsd: ?WATCH for JSON, then the first TPV report (bounded wait)."""
        if self.gpsd is None:
            return None
        deadline = time.monotonic() + self.timeout_s
        with socket.create_connection(self.gpsd, timeout=self.timeout_s) as sock:
            sock.sendall(b'?WATCH={"enable":true,"json":true};\n')
            reader = sock.makefile("rb")
            while time.monotonic() < deadline:
                sock.settimeout(max(0.05, deadline - time.monotonic()))
                try:
                    line = reader.readline(8192)
                except TimeoutError:
                    break  # gpsd is up but has no receiver or no report yet
                if not line:
                    break
                report = json.loads(line)
                if report.get("class") == "TPV":
                    return parse_gpsd_tpv(report)
        return {"fix": "none", "lat": None, "lon": None, "time": None}


def parse_chrony_tracking(csv_line: str) -> dict[str, Any]:
    """`chronyc -c tracking`: 14 comma-separated fields; field 4 is the correction (positive = slow)."""
    fields = csv_line.strip().splitlines()[0].split(",")
    if len(fields) < 14:
        raise ValueError(f"chronyc: expected 14 fields, got {len(fields)}")
    stratum = int(fields[2])
    leap = fields[13]
    synced = leap != "Not synchronised" and 0 < stratum < 16 and int(fields[0], 16) != 0
    return {"synced": synced, "offset_s": round(-float(fields[4]), 6), "source": "chrony"}


def parse_mmcli_modem(data: dict[str, Any]) -> dict[str, Any]:
    modem = data["modem"]
    generic = modem.get("generic", {})
    quality = generic.get("signal-quality") or {}
    try:
        signal = int(quality.get("value"))
    except (TypeError, ValueError):
        signal = None
    techs = [t for t in generic.get("access-technologies") or [] if isinstance(t, str)]
    return {
        "signal_percent": signal,
        "operator": _short((modem.get("3gpp") or {}).get("operator-name")),
        "technology": _short(",".join(techs)),
        "state": _short(generic.get("state")),
    }


def parse_gpsd_tpv(tpv: dict[str, Any]) -> dict[str, Any]:
    fix = GPS_FIX.get(int(tpv.get("mode", 0)), "none")
    has_fix = fix != "none"

    def coord(key: str) -> float | None:
        value = tpv.get(key)
        return round(float(value), 6) if has_fix and isinstance(value, int | float) else None

    return {"fix": fix, "lat": coord("lat"), "lon": coord("lon"), "time": _short(tpv.get("time"))}
