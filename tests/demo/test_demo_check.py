"""`make demo-check` as one test of the suite: the whole system for a fixed time, then every event
checked in S3, the control room and Chromium (it runs beside the other tests instead of before them)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
FOOTAGE = ROOT.parent / "shared" / "data"


@pytest.mark.slow
@pytest.mark.skipif(not FOOTAGE.is_dir(), reason=f"real footage not found at {FOOTAGE} (../shared/data)")
def test_make_demo_check_passes(tmp_path: Path) -> None:
    done = subprocess.run(
        ["make", "--no-print-directory", "demo-check", f"DEMO_ARGS=--dir {tmp_path / 'demo-check-run'}"],
        cwd=ROOT, capture_output=True, text=True, timeout=900, check=False,
    )
    tail = f"{done.stdout[-4000:]}\n{done.stderr[-2000:]}"
    assert done.returncode == 0, f"make demo-check exited {done.returncode}:\n{tail}"
    assert "demo-check: " in done.stdout and " 0 failed" in done.stdout
