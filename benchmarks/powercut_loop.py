"""Soak of the power-cut test on a loaded machine (issue 9): tests/upload/test_powercut.py run N times in
a row with CPU hogs running beside it, stopping at the first failure -> results/powercut_loop.json.

Each run's wall and CPU time, its kills (all, and mid-upload) and the data budget's deviation from the
bytes the unit put on the link come from the test's own record (pytest record_property, via JUnit XML).
Not part of `make bench` (about 40 min): run it by hand, `python -m benchmarks.powercut_loop --runs 20`.
Sequences run side by side (each one more load for the others) are combined with `--merge A.json B.json`.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import signal
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from datetime import UTC, datetime
from pathlib import Path
from tempfile import TemporaryDirectory
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
TEST = "tests/upload/test_powercut.py"
OUT = ROOT / "benchmarks" / "results" / "powercut_loop.json"
HOG = "while 1: pass"


def start_hogs(n: int) -> list[subprocess.Popen[bytes]]:
    """n busy-looping processes at the same niceness as the test: the 'CPU-heavy process running'."""
    return [subprocess.Popen([sys.executable, "-c", HOG]) for _ in range(n)]


def stop_hogs(hogs: list[subprocess.Popen[bytes]]) -> None:
    for p in hogs:
        p.send_signal(signal.SIGKILL)
    for p in hogs:
        p.wait(10)


def children_cpu_s() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def one_run(xml: Path) -> dict[str, Any]:
    cpu0, t0 = children_cpu_s(), time.monotonic()
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-o", "junit_family=xunit1",
         f"--junitxml={xml}", TEST],
        cwd=ROOT, capture_output=True, text=True, check=False,
    )
    run: dict[str, Any] = {
        "passed": proc.returncode == 0,
        "wall_s": round(time.monotonic() - t0, 1),
        "cpu_s": round(children_cpu_s() - cpu0, 1),  # pytest and its uploader processes; not the hogs
    }
    if xml.exists():
        for prop in ET.parse(xml).iter("property"):  # noqa: S314 - the report our own pytest wrote
            value = prop.get("value", "")
            run[prop.get("name", "?")] = float(value) if "." in value else int(value)
    if not run["passed"]:
        run["output_tail"] = proc.stdout[-3000:]
    return run


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--hogs", type=int, default=2, help="busy-looping processes beside the test")
    ap.add_argument("--out", type=Path, default=OUT)
    ap.add_argument("--merge", type=Path, nargs="+", help="combine these sequences' records into --out")
    args = ap.parse_args(argv)
    if args.merge:
        return merge(args.merge, args.out)
    runs: list[dict[str, Any]] = []
    started = datetime.now(UTC)
    load_before = os.getloadavg()
    hogs = start_hogs(args.hogs)
    try:
        with TemporaryDirectory() as tmp:
            for i in range(args.runs):
                run = one_run(Path(tmp) / f"run{i}.xml")
                runs.append(run)
                print(json.dumps({"run": i + 1, **{k: v for k, v in run.items() if k != "output_tail"}}),
                      flush=True)
                write(args, runs, started, load_before)  # after each run: an interrupted soak keeps a record
                if not run["passed"]:
                    break
    finally:
        stop_hogs(hogs)
    result = write(args, runs, started, load_before)
    return 0 if result["in_a_row"] else 1


def write(args: argparse.Namespace, runs: list[dict[str, Any]], started: datetime,
          load_before: tuple[float, float, float]) -> dict[str, Any]:
    deviations = [abs(r["budget_deviation_pct"]) for r in runs if "budget_deviation_pct" in r]
    result = {
        "test": TEST,
        "started_at": started.isoformat(timespec="seconds"),
        "host": {"cpus": os.cpu_count(), "python": platform.python_version(),
                 "loadavg_1_5_15_before": [round(x, 2) for x in load_before],
                 "loadavg_1_5_15_after": [round(x, 2) for x in os.getloadavg()]},
        "cpu_hogs": args.hogs,
        "runs_asked": args.runs,
        "runs": len(runs),
        "passed": sum(r["passed"] for r in runs),
        "in_a_row": len(runs) == args.runs and all(r["passed"] for r in runs),
        "kills_total": sum(r.get("kills", 0) for r in runs),
        "kills_mid_upload_total": sum(r.get("kills_mid_upload", 0) for r in runs),
        "max_abs_budget_deviation_pct": max(deviations) if deviations else None,
        "wall_s_min_median_max": _spread([r["wall_s"] for r in runs]),
        "per_run": runs,
        "note": "wall times are noisy: other engineers' work shared the 2 cores besides the hogs",
    }
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    return result


def merge(paths: list[Path], out: Path) -> int:
    """One record of sequences run at the same time: every run of every sequence, and the totals."""
    seqs = [json.loads(p.read_text()) for p in paths]
    runs = [r for s in seqs for r in s["per_run"]]
    deviations = [abs(r["budget_deviation_pct"]) for r in runs if "budget_deviation_pct" in r]
    result = {
        "test": TEST,
        "sequences_side_by_side": len(seqs),
        "cpu_hogs": sum(s["cpu_hogs"] for s in seqs),
        "runs": len(runs),
        "passed": sum(r["passed"] for r in runs),
        "failed": sum(not r["passed"] for r in runs),
        "kills_total": sum(r.get("kills", 0) for r in runs),
        "kills_mid_upload_total": sum(r.get("kills_mid_upload", 0) for r in runs),
        "max_abs_budget_deviation_pct": max(deviations) if deviations else None,
        "wall_s_min_median_max": _spread([r["wall_s"] for r in runs]),
        "sequences": seqs,
    }
    out.write_text(json.dumps(result, indent=2) + "\n")
    return 0 if result["failed"] == 0 else 1


def _spread(xs: list[float]) -> list[float]:
    s = sorted(xs)
    return [s[0], s[len(s) // 2], s[-1]] if s else []


if __name__ == "__main__":
    sys.exit(main())
