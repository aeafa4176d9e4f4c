"""Controller side of role cctv_agent: copy what the agent's wheel is built from into a fresh folder.
The wheel then depends on the sources alone, so an unchanged checkout gives the same bytes.

A build in the checkout itself is not reproducible: setuptools keeps build/lib between builds (a
deleted module would still ship), package data globs pick up __pycache__/*.pyc written whenever
tests or the control room import a module, and two builds of the same tree at once share one
staging folder. Usage: python3 export_sources.py REPO DEST (DEST is replaced).
"""

from __future__ import annotations

import shutil
import sys
import tomllib
from pathlib import Path

JUNK = shutil.ignore_patterns("__pycache__", "*.pyc", "*.pyo", "*.egg-info")
TOP_LEVEL = ("LICENSE*", "LICENCE*", "NOTICE*", "COPYING*", "AUTHORS*")


def export(repo: Path, dest: Path) -> None:
    project = tomllib.loads((repo / "pyproject.toml").read_text())
    include = project["tool"]["setuptools"]["packages"]["find"]["include"]
    roots = sorted({pattern.split(".")[0].rstrip("*") for pattern in include})
    if dest.exists():
        shutil.rmtree(dest)
    dest.mkdir(parents=True)
    shutil.copy2(repo / "pyproject.toml", dest / "pyproject.toml")
    readme = project["project"].get("readme")
    names = [readme] if isinstance(readme, str) else []
    names += [p.name for pattern in TOP_LEVEL for p in repo.glob(pattern) if p.is_file()]
    for name in names:
        shutil.copy2(repo / name, dest / name)
    for root in roots:
        shutil.copytree(repo / root, dest / root, ignore=JUNK)


if __name__ == "__main__":
    export(Path(sys.argv[1]), Path(sys.argv[2]))
