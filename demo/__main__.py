"""`python -m demo run` (`make demo`) and `python -m demo check` (`make demo-check`): the supervisor.

run: start everything, print the control room's URL and the logins, redraw each unit's progress until
Ctrl-C, then stop everything. check: the same for a fixed time, then drain, verify and print a table.
"""

from __future__ import annotations

import argparse
import faulthandler
import json
import signal
import socket
import sys
import threading
import time
from pathlib import Path
from types import FrameType

from demo.check import check_units, chromium, play_all, table
from demo.procs import Child
from demo.status import StatusBlock, StatusReader, render
from demo.system import CHECK, DEMO, DemoSystem, free_port, tool

ROOT = Path(__file__).resolve().parents[1]


# Set by Ctrl-C, SIGTERM or SIGHUP. The handler also raises KeyboardInterrupt to cut a wait short, but
# Python drops an exception raised while a finaliser runs ("Exception ignored in ..."), which the
# status loop's HTTP and boto3 garbage makes possible: the loops check this flag, so a stop is never lost.
STOP = threading.Event()


def _interrupt(signum: int, _frame: FrameType | None) -> None:
    STOP.set()
    raise KeyboardInterrupt(f"signal {signum}")


def _pause(seconds: float) -> None:
    """Sleep between status redraws; a stop asked for at any time ends the run here at the latest."""
    if STOP.wait(seconds):
        raise KeyboardInterrupt("stop requested")


def _port(wanted: int) -> int:
    """The wanted port if free, else any free one (0 = any)."""
    if wanted:
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", wanted))
                return wanted
            except OSError:
                print(f"port {wanted} is in use; taking a free one", flush=True)
    return free_port()


def leftovers(run_dir: Path) -> list[str]:
    """Anything of the demo still running or listening (there should be nothing)."""
    state = json.loads((run_dir / "demo.json").read_text())
    left = []
    for name, pid in state["pids"].items():
        try:
            with open(f"/proc/{pid}/stat") as f:
                if f.read().split(")")[-1].split()[0] != "Z":
                    left.append(f"process {name} (pid {pid})")
        except OSError:
            pass
    for port in state["ports"]:
        with socket.socket() as s:
            s.settimeout(1)
            if s.connect_ex(("127.0.0.1", port)) == 0:
                left.append(f"port {port} still listening")
    return left


def print_logins(system: DemoSystem) -> None:
    print(f"\ncontrol room: {system.url}   (open it in a browser; the map is on the Fleet page)")
    print("log in as (user, password, role, scope):")
    for x in system.logins:
        print(f"  {x.username:<17} {x.password:<14} {x.role:<9} {x.where()}")
    print(f"run folder: {system.run_dir}  (logs/, units/<id>/agent.toml and data/, control_room/)\n",
          flush=True)


def cmd_run(args: argparse.Namespace) -> int:
    say = lambda m: print(m, flush=True)  # noqa: E731
    tiles = "" if args.map_tiles == "offline" else args.map_tiles
    system = DemoSystem(ROOT, args.dir.resolve(), _port(args.port), DEMO, say=say, map_tiles=tiles)
    try:
        system.start()
        print_logins(system)
        print("Press Ctrl-C to stop everything.\n", flush=True)
        viewer = next(x for x in system.logins if x.role == "admin")
        reader, block = StatusReader(system, viewer), StatusBlock(sys.stdout)
        while True:
            block.show(render(reader.collect(), time.monotonic() - system.started_at))
            for name, child in system.children().items():
                if not child.alive():
                    raise RuntimeError(f"{name} exited ({child.proc.returncode}):\n{child.tail()}")
            _pause(args.refresh)
    except KeyboardInterrupt:
        print("\nstopping: units (each finishes its open event), control room, links, S3 ...", flush=True)
        return _shutdown(system, 0)
    except RuntimeError as err:
        print(f"\ndemo: {err}", file=sys.stderr, flush=True)
        return _shutdown(system, 1)


def _shutdown(system: DemoSystem, code: int) -> int:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not cut the clean-up short
    system.stop()
    left = leftovers(system.run_dir) if (system.run_dir / "demo.json").exists() else []
    if left:
        print("demo: still running after stop: " + ", ".join(left), file=sys.stderr)
        return 1
    print(f"stopped: nothing of the demo is running or listening. Output kept in {system.run_dir}",
          flush=True)
    return code


def cmd_check(args: argparse.Namespace) -> int:
    # No street-map tiles: CI has no internet, and a check must not depend on (or load) a tile server.
    system = DemoSystem(ROOT, args.dir.resolve(), 0, CHECK, say=lambda m: print(m, flush=True), map_tiles="")
    try:
        return _check(system, args)
    except KeyboardInterrupt:
        return _shutdown(system, 130)
    except RuntimeError as err:
        print(f"demo-check: {err}", file=sys.stderr, flush=True)
        return _shutdown(system, 1)


def _check(system: DemoSystem, args: argparse.Namespace) -> int:
    started = time.monotonic()
    system.start()
    viewer = next(x for x in system.logins if x.role == "admin" and x.council is None)
    reader, block = StatusReader(system, viewer), StatusBlock(sys.stdout, every_s=15)
    print(f"recording for {args.record_s:.0f} s (the flaky link drops once)", flush=True)
    end = time.monotonic() + args.record_s
    while time.monotonic() < end:
        block.show(render(reader.collect(), time.monotonic() - system.started_at))
        _pause(1.0)
    print("stopping the units (each finishes its open event), then draining their queues", flush=True)
    exits = system.stop_agents()
    agent = tool("cctv-agent")
    drains = {uid: Child(f"drain-{uid}", [*agent, "uploads", "--config", str(cfg), "--drain",
                                          "--timeout", str(args.drain_timeout)],
                         system.run_dir / "logs" / f"{uid}.drain.log", cwd=ROOT)
              for uid, cfg in system.configs.items()}
    drained = {uid: child.wait(args.drain_timeout + 60) == 0 for uid, child in drains.items()}
    for child in drains.values():
        child.stop(5)
    units = check_units(system, viewer, drained)
    browser = chromium() is not None
    if browser:
        play_all(system.url, viewer, [e for u in units for e in u.events])
    lines = table(units, browser)
    failed = [f"unit {uid} exited {code}" for uid, code in exits.items() if code != 0]
    failed += [f"unit {u.unit_id} failed" for u in units if not u.ok]
    print("\n" + "\n".join(lines))
    if not browser:
        print("playback not checked: chromium is not installed (run `make system-deps` as root)")
    code = _shutdown(system, 1 if failed else 0)
    good = sum(e.ok for u in units for e in u.events)
    bad = sum(not e.ok for u in units for e in u.events) + len(failed)
    print(("FAILED: " + "; ".join(failed) + "\n") if failed else "", end="")
    print(f"demo-check took {time.monotonic() - started:.0f} s", flush=True)
    print(f"demo-check: {good} passed, {bad} failed", flush=True)
    return code


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m demo", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="the whole system until Ctrl-C (make demo)")
    run.add_argument("--dir", type=Path, default=ROOT / "demo-run", help="run folder (wiped at start)")
    run.add_argument("--port", type=int, default=8080, help="control room port (0 = any free port)")
    run.add_argument("--refresh", type=float, default=2.0, help="status refresh, seconds")
    run.add_argument("--map-tiles", metavar="URL|offline", default=None,
                     help="street-map tile URL ({z}/{x}/{y}) for the fleet map; 'offline' = the built-in "
                          "map only (default: the control room's, OpenStreetMap)")
    run.set_defaults(func=cmd_run)
    check = sub.add_parser("check", help="fixed run, then verify every event (make demo-check)")
    check.add_argument("--dir", type=Path, default=ROOT / "demo-check-run", help="run folder (wiped)")
    check.add_argument("--record-s", type=float, default=30.0, help="how long the units record")
    check.add_argument("--drain-timeout", type=float, default=240.0, help="longest wait for uploads")
    check.set_defaults(func=cmd_check)
    args = parser.parse_args(argv)
    # Ctrl-C stops the demo even when started from a shell that ignores SIGINT for background jobs
    # (Python keeps an inherited SIG_IGN, and the demo would then run on until killed).
    signal.signal(signal.SIGINT, _interrupt)
    signal.signal(signal.SIGTERM, _interrupt)
    signal.signal(signal.SIGHUP, _interrupt)
    # `kill -USR1 <supervisor>` prints where every thread is: what to look at if a stop ever hangs
    faulthandler.register(signal.SIGUSR1, all_threads=True)
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
