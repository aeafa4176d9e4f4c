"""`make bench`: every benchmark script with progress, then the plots and the README table.

Each script's output goes to build/bench-logs/<name>.log; progress is a bar on a terminal and plain
lines otherwise, estimated from the previous run's durations (results/bench_run.json, written at the end).
CPU-bound benchmarks run one at a time with nothing beside them. The upload benchmark spends most of
its minutes waiting on throttled links, so once it says that only those are left (report.BESIDE_OK:
its single-link cases, which CPU contention slows, are done by then) the benchmarks in BESIDE run next
to it, one after another: heartbeat (bytes on the wire) and the short agent_resources run (paced by
real time at 10 fps; its figures are the agent's own CPU seconds and memory, and the committed
hour-long result is what the README and the plot show).
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path
from typing import IO

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from report import BESIDE_OK  # noqa: E402

from agent.progress import Progress  # noqa: E402

HERE = ROOT / "benchmarks"
LOGS = ROOT / "build" / "bench-logs"
RUN_FILE = HERE / "results" / "bench_run.json"
LIMIT_S = 20 * 60  # the whole `make bench` must fit in 20 minutes on a 2-core machine
# host -> benchmarks run beside it, in turn, once the host prints BESIDE_OK (or has ended), when both
# are asked for; never a CPU-bound one
BESIDE: dict[str, tuple[str, ...]] = {"upload": ("heartbeat", "agent_resources")}


def previous_durations() -> dict[str, float]:
    try:
        return {k: float(v) for k, v in json.loads(RUN_FILE.read_text())["scripts_s"].items()}
    except (OSError, ValueError, KeyError, TypeError):
        return {}


def plan(names: list[str]) -> list[list[list[str]]]:
    """Steps run in order; a step is lanes run at the same time; a lane is scripts run in turn."""
    beside = {c: host for host, cs in BESIDE.items() if host in names for c in cs if c in names}
    steps = []
    for name in names:
        if name in beside:
            continue
        companions = [c for c in names if beside.get(c) == name]
        steps.append([[name], companions] if companions else [[name]])
    return steps


class Running:
    """A script started by a Step: its process, start time and open log."""

    def __init__(self, name: str, proc: subprocess.Popen, started: float, log: IO[bytes]) -> None:
        self.name, self.proc, self.started, self.log = name, proc, started, log


class Step:
    """One step's lanes: starts each lane's next script when its previous one ends; the lanes after the
    first (the host's) start once the host prints BESIDE_OK or ends."""

    def __init__(self, lanes: list[list[str]], say: bool) -> None:
        self.say = say  # a line per start and end (when there is no bar on a terminal)
        self.todo = [list(lane) for lane in lanes]
        self.running: list[Running | None] = [None] * len(lanes)
        self.gate_open = len(lanes) == 1
        self.took: dict[str, float] = {}
        self.cpu: dict[str, float] = {}
        self.codes: dict[str, int] = {}
        self.failed = False

    def _start(self, lane: int) -> None:
        if self.failed or not self.todo[lane]:
            return
        name = self.todo[lane].pop(0)
        log = open(LOGS / f"{name}.log", "wb")  # noqa: SIM115 - closed when the script ends
        proc = subprocess.Popen([sys.executable, str(HERE / f"{name}.py")], stdout=log,
                                stderr=subprocess.STDOUT, cwd=ROOT)
        self.running[lane] = Running(name, proc, time.monotonic(), log)
        if self.say:
            print(f"bench: {name} started", flush=True)

    def start(self) -> None:
        LOGS.mkdir(parents=True, exist_ok=True)
        self._start(0)

    def _open_gate(self) -> None:
        host = self.running[0]
        if host is not None and BESIDE_OK.encode() not in (LOGS / f"{host.name}.log").read_bytes():
            return
        self.gate_open = True
        for lane in range(1, len(self.todo)):
            self._start(lane)

    def poll(self) -> bool:
        """Reap what ended (with its own CPU time), start what follows; False once all are done."""
        if not self.gate_open:
            self._open_gate()
        for lane, run in enumerate(self.running):
            if run is None:
                continue
            pid, status, usage = os.wait4(run.proc.pid, os.WNOHANG)
            if pid == 0:
                continue
            run.proc.returncode = code = os.waitstatus_to_exitcode(status)
            run.log.close()
            seconds = time.monotonic() - run.started
            self.took[run.name] = round(seconds, 1)
            self.cpu[run.name] = round(usage.ru_utime + usage.ru_stime, 1)  # with its reaped children
            self.codes[run.name] = code
            self.failed |= code != 0
            if self.say:
                verdict = "done" if code == 0 else f"FAILED ({code})"
                print(f"bench: {run.name} {verdict} in {seconds:.0f} s", flush=True)
            self.running[lane] = None
            if lane == 0 or self.gate_open:
                self._start(lane)  # after a failure nothing new starts; what runs is left to finish
        if not self.gate_open and self.running[0] is None:
            self._open_gate()  # the host ended without saying so: the others run now, after it
        return any(r is not None for r in self.running)

    def names_running(self) -> list[str]:
        return [r.name for r in self.running if r is not None]


def main(argv: list[str]) -> int:
    names = argv or sorted(p.stem for p in HERE.glob("*.py") if p.stem not in {
        "run_all", "plots", "readme_table", "report", "upload_slow", "motion_slow", "motion_sequences",
        "agent_procs"})
    missing = [n for n in names if not (HERE / f"{n}.py").exists()]
    if missing:
        print(f"run_all: no benchmark script {', '.join(missing)}", file=sys.stderr)
        return 2
    prev = previous_durations()
    steps = plan(names)
    expected = [max(sum(prev.get(n, 60.0) for n in lane) for lane in step) for step in steps]
    progress = Progress(sum(expected), "bench", every_s=30)
    print(f"bench: {len(names)} benchmarks in {len(steps)} steps, about {sum(expected) / 60:.0f} min by "
          f"the last run; logs in {os.path.relpath(LOGS, ROOT)}/", flush=True)
    took: dict[str, float] = {}
    cpu: dict[str, float] = {}
    step_s: list[float] = []
    started = time.monotonic()
    done_s = 0.0
    for i, (lanes, expected_s) in enumerate(zip(steps, expected, strict=True), start=1):
        step = Step(lanes, say=not progress.tty)
        step_started = time.monotonic()
        step.start()
        while step.poll():
            time.sleep(1.0)
            so_far = time.monotonic() - step_started
            left = max(0.0, progress.total - done_s - so_far)
            progress.detail = (f"{i}/{len(steps)} {' + '.join(step.names_running())} {so_far:.0f} s, "
                               f"about {left / 60:.0f} min left,")
            progress.update(done_s + min(so_far, expected_s * 0.98))
        took |= step.took
        cpu |= step.cpu
        step_s.append(round(time.monotonic() - step_started, 1))
        done_s += expected_s
        failed = [n for n, c in step.codes.items() if c != 0]
        if failed:
            progress.close(f"{', '.join(failed)} failed")
            for name in failed:
                print((LOGS / f"{name}.log").read_text(errors="replace")[-3000:], file=sys.stderr)
            return 1
    progress.detail = "all done,"
    progress.update(progress.total)
    total = time.monotonic() - started
    progress.close(f"{len(names)} benchmarks in {total / 60:.1f} min")
    RUN_FILE.write_text(json.dumps({
        "total_s": round(total, 1), "limit_s": LIMIT_S, "within_limit": total <= LIMIT_S, "scripts_s": took,
        "scripts_cpu_s": cpu, "total_cpu_s": round(sum(cpu.values()), 1),
        "steps": [{"lanes": lanes, "s": s} for lanes, s in zip(steps, step_s, strict=True)],
        "machine": {"platform": platform.platform(), "cpus": os.cpu_count(),
                    "loadavg_at_end": [round(x, 2) for x in os.getloadavg()]},
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}, indent=1) + "\n")
    for step_name in ("plots", "readme_table"):
        if subprocess.run([sys.executable, str(HERE / f"{step_name}.py")], cwd=ROOT, check=False).returncode:
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
