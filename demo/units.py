"""The demo's three simulated units: what each films, where it stands, and its 4G-like link.

Each unit is a real `cctv-agent run` on a file source looping a clip from ../shared/data at real
speed; its uploads and heartbeats go through its own throttling proxy (one shared link), and its GPS
answers from a simulated gpsd at its site.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from demo.faultproxy import FaultProxy, LinkState
from demo.gpsd import SimulatedGpsd

REGION = "eu-west-2"
BUCKET = "cctv-footage"
PREFIX = "units"
S3_KEYS = {"access_key_id": "testing", "secret_access_key": "testing"}  # moto: any key works


@dataclass(frozen=True)
class UnitSpec:
    unit_id: str
    council: str
    site: str
    address: str
    lat: float
    lon: float
    clip: str  # under ../shared/data
    size: tuple[int, int]
    fps: float
    bitrate_kbps: int
    rate_kbps: float  # uplink and downlink rate of its link
    flaky: bool = False  # the link drops for a while now and then

    def link_text(self) -> str:
        rate = f"{self.rate_kbps / 1000:g} Mbit/s" if self.rate_kbps >= 1000 else f"{self.rate_kbps:g} kbit/s"
        return rate + (", drops" if self.flaky else "")


COUNCILS = {
    "stalbans": "St Albans City and District Council",
    "watford": "Watford Borough Council",
}

UNITS = (
    UnitSpec("sac-mcu-01", "stalbans", "St Peters Street forecourt", "St Peters Street, St Albans",
             51.7527, -0.3374, "opencv_vtest_480x360.avi", (480, 360), 10, 400, 2000),
    UnitSpec("sac-mcu-02", "stalbans", "A414 North Orbital layby", "North Orbital Road, St Albans",
             51.7352, -0.3013, "cdnet_highway/highway_input_h264.mp4", (320, 240), 25, 250, 512),
    UnitSpec("wat-mcu-01", "watford", "M1 junction 5 bridge", "Hempstead Road, Watford",
             51.6612, -0.3967, "bgslibrary_video02.avi", (320, 240), 25, 250, 1000, flaky=True),
)


def agent_config(spec: UnitSpec, data_dir: Path, clip: Path, s3_url: str, status_url: str, token: str,
                 gpsd: str, heartbeat_s: float) -> str:
    """The unit's TOML: what provisioning would write, with short clips so events come often."""
    def q(v: Any) -> str:
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, int | float):
            return repr(v)
        return '"' + str(v).replace("\\", "\\\\").replace('"', '\\"') + '"'

    sections: dict[str, dict[str, Any]] = {
        "unit": {"id": spec.unit_id, "site": spec.site, "data_dir": str(data_dir)},
        "camera": {"source": "file", "device": str(clip), "width": spec.size[0], "height": spec.size[1],
                   "fps": float(spec.fps), "loop": True, "pace": "realtime"},
        "recording": {"segment_seconds": 4.0, "bitrate_kbps": spec.bitrate_kbps, "keyframe_interval_s": 1.0},
        "events": {"pre_roll_s": 3.0, "post_roll_s": 4.0, "max_clip_s": 10.0},
        "upload": {"endpoint_url": s3_url, "region": REGION, "bucket": BUCKET, "prefix": PREFIX,
                   **S3_KEYS, "monthly_budget_mb": 0.0, "timeout_s": 15.0,
                   "multipart_threshold_mb": 8.0, "part_size_mb": 5.0},
        "status": {"url": status_url, "token": token, "interval_s": float(heartbeat_s), "timeout_s": 10.0,
                   "gpsd": gpsd, "modem": False},
    }
    lines = [f"# demo unit {spec.unit_id}: written by the demo supervisor (mode 0600: it holds secrets)"]
    for name, values in sections.items():
        lines.append(f"\n[{name}]")
        lines += [f"{k} = {q(v)}" for k, v in values.items()]
    return "\n".join(lines) + "\n"


def write_private(path: Path, text: str) -> None:
    """A file only its owner can read, written whole (temp + rename)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


class UnitLink:
    """A unit's 4G link: two proxies (to S3 and to the control room) sharing one LinkState."""

    def __init__(self, spec: UnitSpec, s3: tuple[str, int], control_room: tuple[str, int]) -> None:
        self.spec = spec
        self.state = LinkState(rate_bps=spec.rate_kbps * 1000)
        self.s3 = FaultProxy(*s3, link=self.state)
        self.cr = FaultProxy(*control_room, link=self.state)
        self.gps = SimulatedGpsd(spec.lat, spec.lon)
        self.down_since: float | None = None
        self._lock = threading.Lock()

    def start(self) -> UnitLink:
        self.s3.start()
        self.cr.start()
        self.gps.start()
        return self

    def cut(self, now: float) -> None:
        with self._lock:
            self.down_since = now
            self.s3.cut()
            self.cr.cut()

    def restore(self) -> None:
        with self._lock:
            self.down_since = None
            self.s3.restore()
            self.cr.restore()

    def ports(self) -> list[int]:
        return [self.s3.port, self.cr.port, self.gps.port]

    def stop(self) -> None:
        for part in (self.s3, self.cr, self.gps):
            try:
                part.stop()
            except Exception as err:  # noqa: BLE001 - stopping the rest matters more
                print(f"warning: stopping {self.spec.unit_id}'s link: {err}")
