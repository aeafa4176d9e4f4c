"""The README's benchmark table and plots follow the results files: the table is exactly what
benchmarks/readme_table.py makes from benchmarks/results/*.json, and every plot drawn from a results
file is committed beside it and shown in the README."""

from __future__ import annotations

import importlib.util
import json
import shutil
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[2]
RESULTS = ROOT / "benchmarks" / "results"
PLOTTED = ("motion", "upload", "control_room", "agent_resources")


def load(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"bench_{name}", ROOT / "benchmarks" / f"{name}.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_readme_table_is_the_one_generated_from_the_results() -> None:
    table = load("readme_table")
    readme = (ROOT / "README.md").read_text()
    assert table.render(readme) == readme, "run `make readme-table` (or `make bench`) and commit README.md"
    assert table.main(["--check"]) == 0


def test_table_follows_a_changed_result(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    table = load("readme_table")
    shutil.copytree(RESULTS, tmp_path / "results", ignore=shutil.ignore_patterns("*.png"))
    motion = json.loads((tmp_path / "results" / "motion.json").read_text())
    motion["ours"]["f1"] = 0.5
    (tmp_path / "results" / "motion.json").write_text(json.dumps(motion))
    monkeypatch.setattr(table, "RESULTS", tmp_path / "results")
    readme = (ROOT / "README.md").read_text()
    assert "| **0.50** (P" in table.render(readme) != readme
    (tmp_path / "results" / "upload.json").write_text("{}")  # a broken file is shown as such, not hidden
    assert "| `upload.json` | unreadable: KeyError" in table.render(readme)


@pytest.mark.parametrize("name", PLOTTED)
def test_each_plot_with_results_is_committed_and_shown_in_the_readme(name: str) -> None:
    if not (RESULTS / f"{name}.json").exists():
        pytest.skip(f"no {name} results yet")
    assert (RESULTS / f"{name}.png").stat().st_size > 10_000
    assert f"](benchmarks/results/{name}.png)" in (ROOT / "README.md").read_text()


def test_plots_are_drawn_from_the_results(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("matplotlib", reason="matplotlib is in the bench extra (make bench installs it)")
    plots = load("plots")
    shutil.copytree(RESULTS, tmp_path / "results", ignore=shutil.ignore_patterns("*.png"))
    monkeypatch.setattr(plots, "RESULTS", tmp_path / "results")
    plots.main()
    for name in ("motion", "upload", "control_room"):
        png = tmp_path / "results" / f"{name}.png"
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 10_000
