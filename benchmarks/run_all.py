"""`make bench`: every benchmark script in turn, with progress, then the plots and the README table.

Each script's output goes to build/bench-logs/<name>.log; progress is a bar on a terminal and plain
lines otherwise, estimated from the previous run's durations (results/bench_run.json, written at the end).
"""

from __future__ import annotations

import json
import os
import platform
import resource
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from agent.progress import Progress  # noqa: E402

HERE = ROOT / "benchmarks"
LOGS = ROOT / "build" / "bench-logs"
RUN_FILE = HERE / "results" / "bench_run.json"
LIMIT_S = 20 * 60  # the whole `make bench` must fit in 20 minutes on a 2-core machine


def previous_durations() -> dict[str, float]:
    try:
        return {k: float(v) for k, v in json.loads(RUN_FILE.read_text())["scripts_s"].items()}
    except (OSError, ValueError, KeyError, TypeError):
        return {}


def run_script(name: str, step: str, progress: Progress, before_s: float, expected_s: float
               ) -> tuple[int, float]:
    LOGS.mkdir(parents=True, exist_ok=True)
    log = LOGS / f"{name}.log"
    started = time.monotonic()
    cpu_before = _children_cpu()
    with open(log, "wb") as out:
        proc = subprocess.Popen([sys.executable, str(HERE / f"{name}.py")], stdout=out,
                                stderr=subprocess.STDOUT, cwd=ROOT)
        done = threading.Event()
        while not done.wait(1.0):
            if proc.poll() is not None:
                done.set()
            so_far = time.monotonic() - started
            left = max(0.0, progress.total - before_s - so_far)
            progress.detail = f"{step} {name} {so_far:.0f} s, about {left / 60:.0f} min left,"
            progress.update(before_s + min(so_far, expected_s * 0.98))
    CPU[name] = round(_children_cpu() - cpu_before, 1)
    return proc.returncode, time.monotonic() - started


CPU: dict[str, float] = {}  # CPU seconds of each script (with its children): what load cannot inflate


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def main(argv: list[str]) -> int:
    names = argv or sorted(p.stem for p in HERE.glob("*.py") if p.stem not in {"run_all", "plots",
                                                                              "readme_table", "report"})
    missing = [n for n in names if not (HERE / f"{n}.py").exists()]
    if missing:
        print(f"run_all: no benchmark script {', '.join(missing)}", file=sys.stderr)
        return 2
    prev = previous_durations()
    expected = {n: prev.get(n, 60.0) for n in names}
    progress = Progress(sum(expected.values()), "bench", every_s=30)
    print(f"bench: {len(names)} benchmarks, about {sum(expected.values()) / 60:.0f} min by the last run; "
          f"logs in {LOGS.relative_to(ROOT)}/", flush=True)
    took: dict[str, float] = {}
    started = time.monotonic()
    done_s = 0.0
    for i, name in enumerate(names, start=1):
        if not progress.tty:
            print(f"bench: {name} started", flush=True)
        code, seconds = run_script(name, f"{i}/{len(names)}", progress, done_s, expected[name])
        took[name] = round(seconds, 1)
        done_s += expected[name]
        if not progress.tty:
            verdict = "done" if code == 0 else f"FAILED ({code})"
            print(f"bench: {name} {verdict} in {seconds:.0f} s", flush=True)
        if code != 0:
            progress.close(f"{name} failed")
            print((LOGS / f"{name}.log").read_text(errors="replace")[-3000:], file=sys.stderr)
            return 1
    progress.detail = "all done,"
    progress.update(progress.total)
    total = time.monotonic() - started
    progress.close(f"{len(names)} benchmarks in {total / 60:.1f} min")
    RUN_FILE.write_text(json.dumps({
        "total_s": round(total, 1), "limit_s": LIMIT_S, "within_limit": total <= LIMIT_S, "scripts_s": took,
        "scripts_cpu_s": CPU, "total_cpu_s": round(sum(CPU.values()), 1),
        "machine": {"platform": platform.platform(), "cpus": os.cpu_count(),
                    "loadavg_at_end": [round(x, 2) for x in os.getloadavg()]},
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}, indent=1) + "\n")
    for step in ("plots", "readme_table"):
        if subprocess.run([sys.executable, str(HERE / f"{step}.py")], cwd=ROOT, check=False).returncode:
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
