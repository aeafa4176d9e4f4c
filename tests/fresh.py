"""A fresh Python interpreter for the tests that must see a process from its start (what an import
pulls in, malloc and kernel settings, command-line re-execution): the repository on its path."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def fresh_python(*args: str, timeout: float = 120, check: bool = True,
                 drop_env: tuple[str, ...] = ()) -> subprocess.CompletedProcess[str]:
    """`python ARGS...` (e.g. "-c", code) in a new interpreter with the repository importable, the
    environment inherited minus `drop_env`; output captured as text."""
    env = {k: v for k, v in os.environ.items() if k not in drop_env}
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, timeout=timeout,
                          env={**env, "PYTHONPATH": str(REPO)}, check=check)
