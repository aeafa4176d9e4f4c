"""DemoSystem: starts and stops the whole system on one machine, in order, and knows every piece.

moto S3 (in-process, 127.0.0.1) -> control room (`cctv-control-room serve`, SQLite) -> per unit: a link
(throttling proxies, simulated gpsd) and `cctv-agent run`. stop() undoes all of it, whatever failed.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import requests
from moto.server import ThreadedMotoServer

from demo.partnership import Login, control_room_env, create_partnership, deploy_units
from demo.procs import Child
from demo.units import BUCKET, REGION, S3_KEYS, UNITS, UnitLink, UnitSpec, agent_config, write_private

logging.getLogger("werkzeug").setLevel(logging.WARNING)  # moto's per-request lines would drown the status
MARKER = ".mobile-cctv-demo"  # a run folder is only ever wiped if it carries this file


@dataclass(frozen=True)
class Timings:
    heartbeat_s: float = 10.0
    first_drop_s: float = 90.0  # the flaky unit's link first drops this long after start ...
    down_s: float = 60.0  # ... for this long ...
    up_s: float = 180.0  # ... then stays up this long before the next drop
    max_drops: int = 0  # 0 = for ever


DEMO = Timings()
# demo-check: the flaky link drops once, while the first events upload, and is back well before the end
CHECK = Timings(heartbeat_s=5.0, first_drop_s=8.0, down_s=10.0, up_s=600.0, max_drops=1)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def tool(name: str) -> list[str]:
    """A console script of this project, from the venv the supervisor runs in."""
    path = Path(sys.executable).parent / name
    found = str(path) if path.exists() else shutil.which(name)
    if not found:
        raise RuntimeError(f"{name} not found: run `make venv` first")
    return [found]


def prepare_run_dir(run_dir: Path) -> None:
    """A fresh run folder: an earlier demo's output is removed, never appended to; a folder that is
    not the demo's own is refused rather than wiped."""
    if run_dir.exists() and any(run_dir.iterdir()):
        if not (run_dir / MARKER).exists():
            raise RuntimeError(f"{run_dir} exists and is not a demo run folder: choose another --dir")
        shutil.rmtree(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    os.chmod(run_dir, 0o700)  # footage, tokens and the session key inside
    (run_dir / MARKER).write_text("made by the mobile-cctv demo; wiped at the next run\n")


class DemoSystem:
    def __init__(self, root: Path, run_dir: Path, port: int = 0, timings: Timings = DEMO,
                 units: tuple[UnitSpec, ...] = UNITS, say: Callable[[str], None] = print,
                 map_tiles: str | None = None) -> None:
        self.root, self.run_dir, self.timings, self.units, self.say = root, run_dir, timings, units, say
        self.map_tiles = map_tiles  # None: the control room's default; "": the offline map only
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.moto: ThreadedMotoServer | None = None
        self._s3: Any = None
        self.s3_url = ""
        self.control_room: Child | None = None
        self.links: dict[str, UnitLink] = {}
        self.agents: dict[str, Child] = {}
        self.logins: list[Login] = []
        self.tokens: dict[str, str] = {}
        self.configs: dict[str, Path] = {}
        self.started_at = 0.0
        self._stop = threading.Event()
        self._flapper: threading.Thread | None = None

    # --- start ----------------------------------------------------------------------------------
    def start(self) -> None:
        prepare_run_dir(self.run_dir)
        self.say("starting S3 (moto server mode) on 127.0.0.1")
        self.moto = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        self.moto.start()
        host, port = self.moto.get_host_and_port()
        self.s3_url = f"http://{host}:{port}"
        self.s3().create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": REGION})
        self._start_control_room()
        self._start_units()
        self.started_at = time.monotonic()
        if any(spec.flaky for spec in self.units):
            self._flapper = threading.Thread(target=self._flap, name="flapper", daemon=True)
            self._flapper.start()
        self._write_state()

    def s3(self) -> Any:
        """One client for the run (boto3 clients are thread-safe): the status loop asks every 2 s."""
        if self._s3 is None:
            self._s3 = boto3.client("s3", endpoint_url=self.s3_url, region_name=REGION,
                                    aws_access_key_id=S3_KEYS["access_key_id"],
                                    aws_secret_access_key=S3_KEYS["secret_access_key"])
        return self._s3

    def _start_control_room(self) -> None:
        cli = tool("cctv-control-room")
        env = control_room_env(self.run_dir, self.s3_url, self.timings.heartbeat_s, dict(os.environ))
        if self.map_tiles is not None:
            env["CONTROL_ROOM_MAP_TILE_URL"] = self.map_tiles
        self.say("creating the demo partnership (control room CLI: db upgrade, councils, people, units)")
        self.logins, self.tokens = create_partnership(env, self.root)
        self.say(f"starting the control room on {self.url}")
        argv = [*cli, "serve", "--host", "127.0.0.1", "--port", str(self.port)]
        self.control_room = Child("control-room", argv, self.run_dir / "logs" / "control_room.log", env=env)
        self._wait_health()
        admin = next(x for x in self.logins if x.role == "admin" and x.council is None)
        try:
            deploy_units(self.url, admin, self.units)
        except (RuntimeError, requests.RequestException) as err:  # the map then shows GPS positions only
            self.say(f"warning: sites and deployments not created ({err})")

    def _wait_health(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        assert self.control_room is not None
        while time.monotonic() < deadline:
            if not self.control_room.alive():
                raise RuntimeError("the control room exited:\n" + self.control_room.tail())
            try:
                if requests.get(f"{self.url}/api/v1/health", timeout=2).status_code == 200:
                    return
            except requests.RequestException:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"the control room did not answer on {self.url} within {timeout:.0f} s")

    def _start_units(self) -> None:
        agent = tool("cctv-agent")
        moto_host, moto_port = self.s3_url.removeprefix("http://").split(":")
        data = self.root / ".." / "shared" / "data"
        for spec in self.units:
            clip = (data / spec.clip).resolve()
            if not clip.is_file():
                raise RuntimeError(f"sample footage {clip} is missing (the clips live in ../shared/data)")
            link = UnitLink(spec, (moto_host, int(moto_port)), ("127.0.0.1", self.port)).start()
            self.links[spec.unit_id] = link
            unit_dir = self.run_dir / "units" / spec.unit_id
            cfg = unit_dir / "agent.toml"
            text = agent_config(spec, unit_dir / "data", clip, link.s3.url, link.cr.url,
                                self.tokens[spec.unit_id], link.gps.address, self.timings.heartbeat_s)
            write_private(cfg, text)
            self.configs[spec.unit_id] = cfg
            self.say(f"starting unit {spec.unit_id} ({spec.clip}, link {spec.link_text()})")
            self.agents[spec.unit_id] = Child(spec.unit_id, [*agent, "run", "--config", str(cfg)],
                                              self.run_dir / "logs" / f"{spec.unit_id}.log", cwd=self.root)

    def _flap(self) -> None:
        """The flaky unit's link: drops for down_s now and then (heartbeats and uploads both fail)."""
        t = self.timings
        drops = 0
        wait = t.first_drop_s
        while not self._stop.wait(wait):
            flaky = [link for link in self.links.values() if link.spec.flaky]
            for link in flaky:
                link.cut(time.monotonic())
            if self._stop.wait(t.down_s):
                break
            for link in flaky:
                link.restore()
            drops += 1
            if t.max_drops and drops >= t.max_drops:
                return
            wait = t.up_s
        for link in self.links.values():
            link.restore()

    def _write_state(self) -> None:
        """demo.json: what is running (pids, ports), for a person debugging and for the tests."""
        ports = [self.port, int(self.s3_url.rsplit(":", 1)[1])]
        for link in self.links.values():
            ports += link.ports()
        state = {"url": self.url, "s3": self.s3_url, "supervisor_pid": os.getpid(),
                 "pids": {name: c.pid for name, c in self.children().items()}, "ports": ports}
        (self.run_dir / "demo.json").write_text(json.dumps(state, indent=1) + "\n")

    def children(self) -> dict[str, Child]:
        out = dict(self.agents)
        if self.control_room is not None:
            out["control-room"] = self.control_room
        return out

    # --- stop -----------------------------------------------------------------------------------
    def stop_agents(self, timeout: float = 30.0) -> dict[str, int]:
        """SIGTERM every agent at once (each finishes its open segment and event), then wait."""
        for child in self.agents.values():
            child.signal(signal.SIGTERM)
        return {name: child.stop(timeout, signalled=True) for name, child in self.agents.items()}

    def stop(self) -> None:
        """Everything, in reverse order; every step runs even if an earlier one failed."""
        self._stop.set()
        steps: list[Callable[[], object]] = [self.stop_agents]
        if self.control_room is not None:
            steps.append(self.control_room.stop)
        steps += [link.stop for link in self.links.values()]
        if self.moto is not None:
            steps.append(self.moto.stop)
        for step in steps:
            try:
                step()
            except Exception as err:  # noqa: BLE001 - the rest must still stop
                self.say(f"warning: while stopping: {err}")
        if self._flapper is not None:
            self._flapper.join(5)
