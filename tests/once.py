"""Work shared by the pytest-xdist workers of one run: built once, by whichever worker asks first.

A module fixture runs again in every worker given one of the module's tests (up to four under `make
test`); deterministic, read-only results (cut or re-encoded footage, a recorded unit) are built once.
"""

from __future__ import annotations

import fcntl
import os
import pickle
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import pytest

T = TypeVar("T")


def once(tmp_path_factory: pytest.TempPathFactory, name: str, build: Callable[[Path], T]) -> T:
    """build(folder) -> value, run once per test run in a fresh `folder` shared by the workers; the
    others wait for it (a file lock) and get the same value (pickled) and files. Nothing in `folder`
    may be changed by a test: copy it first."""
    root = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        root = root.parent  # this run's folder, shared by its workers (each has its own below it)
    folder = root / f"once-{name}"
    with open(root / f"once-{name}.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes, or its process dies
        done = folder / ".value.pickle"
        if done.exists():
            return pickle.loads(done.read_bytes())  # noqa: S301 (written above, by this run)
        shutil.rmtree(folder, ignore_errors=True)  # a build that failed part way
        folder.mkdir()
        value = build(folder)
        tmp = folder / ".value.pickle.tmp"
        tmp.write_bytes(pickle.dumps(value))
        tmp.rename(done)
        return value
