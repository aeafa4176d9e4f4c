"""Writing a benchmark's results: one JSON file in benchmarks/results/, replaced atomically; and the
line by which a benchmark tells `make bench` (run_all.py) that others may now run beside it.

Shared by every script in benchmarks/ (run as `python benchmarks/X.py`, so this folder is on sys.path).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from agent.fsutil import atomic_write_bytes

RESULTS_DIR = Path(__file__).resolve().parent / "results"


def write_results(name_or_path: str | Path, results: dict[str, Any], shown: Any = None,
                  indent: int = 1) -> Path:
    """Write `results` to results/<name>.json (or the given path), print `shown` (default: all)."""
    path = Path(name_or_path) if isinstance(name_or_path, Path) else RESULTS_DIR / f"{name_or_path}.json"
    atomic_write_bytes(path, (json.dumps(results, indent=indent) + "\n").encode(), mode=0o644)
    print(json.dumps(results if shown is None else shown, indent=indent))
    return path


# run_all.py starts the benchmarks that run beside a host (its BESIDE) once the host prints this line
BESIDE_OK = "bench: what is left of this benchmark is bound by its links; others may run beside it now"


def others_may_run_beside() -> None:
    """Tell `make bench` that what this benchmark still measures is bound by link rates, not the CPU."""
    print(BESIDE_OK, flush=True)
