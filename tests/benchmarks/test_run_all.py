"""`make bench`'s runner (benchmarks/run_all.py): CPU-bound benchmarks alone, the link-bound upload
benchmark with its companions beside it, every script's time and CPU recorded, a failure stops the run."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[2]

# The host opens the gate (a file, then the line run_all waits for); a companion fails unless the gate
# is open, then leaves a mark; the host waits (bounded) until every companion has left one, so it can
# only succeed when they run beside it, after the gate and not after the host.
HOST = """
import sys, time
from pathlib import Path
sys.path.insert(0, str(Path(__file__).parent))
from report import others_may_run_beside
here = Path(__file__).parent
assert not list(here.glob("*.mark")), "a companion started before the gate opened"
(here / "gate").write_text("open")
others_may_run_beside()
deadline = time.monotonic() + 60
while not all((here / f"{n}.mark").exists() for n in ("heartbeat", "agent_resources")):
    if time.monotonic() > deadline:
        sys.exit("companions did not run beside me")
    time.sleep(0.05)
print("host done")
"""
MARK = """
import sys
from pathlib import Path
here = Path(__file__).parent
if not (here / "gate").exists():
    sys.exit("started before the host opened the gate")
(here / "{name}.mark").write_text("x")
print("{name}")
"""
ALONE = """
from pathlib import Path
assert not list(Path(__file__).parent.glob("*.mark")), "ran beside a companion"
print("alone")
"""


def load_runner(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_run_all", ROOT / "benchmarks" / "run_all.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    scripts = tmp_path / "benchmarks"
    (scripts / "results").mkdir(parents=True)
    monkeypatch.setattr(module, "HERE", scripts)
    monkeypatch.setattr(module, "LOGS", tmp_path / "logs")
    monkeypatch.setattr(module, "RUN_FILE", scripts / "results" / "bench_run.json")
    monkeypatch.setattr(module, "BESIDE", {"upload": ("heartbeat", "agent_resources")})
    for name in ("plots", "readme_table"):
        (scripts / f"{name}.py").write_text("print('ok')\n")
    (scripts / "report.py").write_text((ROOT / "benchmarks" / "report.py").read_text())
    (scripts / "upload.py").write_text(HOST)
    for name in ("heartbeat", "agent_resources"):
        (scripts / f"{name}.py").write_text(MARK.format(name=name))
    (scripts / "motion.py").write_text(ALONE)
    return module


def test_plan_puts_companions_beside_their_host_only() -> None:
    spec = importlib.util.spec_from_file_location("bench_run_all", ROOT / "benchmarks" / "run_all.py")
    assert spec and spec.loader
    run_all = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(run_all)
    names = ["motion", "upload", "recording", "heartbeat", "control_room", "agent_resources"]
    assert run_all.plan(names) == [[["motion"]], [["upload"], ["heartbeat", "agent_resources"]],
                                   [["recording"]], [["control_room"]]]
    assert run_all.plan(["heartbeat", "motion"]) == [[["heartbeat"]], [["motion"]]]  # no host: alone
    for step in run_all.plan(names):  # nothing CPU-bound ever shares a step
        cpu_bound = {"motion", "recording", "control_room", "login_flood", "evidence", "events"}
        assert len(step) == 1 or not cpu_bound & {n for lane in step for n in lane}


def test_companions_run_beside_the_host_and_times_are_recorded(tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    run_all = load_runner(tmp_path, monkeypatch)
    assert run_all.main(["motion", "upload", "heartbeat", "agent_resources"]) == 0
    run = json.loads((tmp_path / "benchmarks" / "results" / "bench_run.json").read_text())
    assert set(run["scripts_s"]) == set(run["scripts_cpu_s"]) == {"motion", "upload", "heartbeat",
                                                                  "agent_resources"}
    lanes = [s["lanes"] for s in run["steps"]]
    assert lanes == [[["motion"]], [["upload"], ["heartbeat", "agent_resources"]]]
    assert all(v >= 0 for v in run["scripts_cpu_s"].values())  # each script's own CPU (with its children)
    assert (tmp_path / "logs" / "upload.log").read_text().splitlines()[-1] == "host done"


def test_a_failure_stops_the_run_after_what_runs_beside_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    run_all = load_runner(tmp_path, monkeypatch)
    (tmp_path / "benchmarks" / "heartbeat.py").write_text("import sys; print('broken'); sys.exit(3)\n")
    (tmp_path / "benchmarks" / "upload.py").write_text("print('host done')\n")
    assert run_all.main(["upload", "heartbeat", "agent_resources", "motion"]) == 1
    assert "broken" in capsys.readouterr().err
    assert not (tmp_path / "logs" / "agent_resources.log").exists()  # nothing new starts after a failure
    assert not (tmp_path / "logs" / "motion.log").exists()
    assert not (tmp_path / "benchmarks" / "results" / "bench_run.json").exists()


def test_a_host_that_never_opens_the_gate_has_its_companions_after_it(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    run_all = load_runner(tmp_path, monkeypatch)
    (tmp_path / "benchmarks" / "upload.py").write_text(
        "from pathlib import Path; (Path(__file__).parent / 'gate').write_text('host ended')\n")
    assert run_all.main(["upload", "heartbeat", "agent_resources"]) == 0
    assert (tmp_path / "benchmarks" / "agent_resources.mark").exists()


def test_unknown_benchmark_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    run_all = load_runner(tmp_path, monkeypatch)
    assert run_all.main(["nosuch"]) == 2
