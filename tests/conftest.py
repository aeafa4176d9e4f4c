"""Whole-suite test ordering: the longest tests start first, so two or more workers overlap them.

pytest-xdist's `load` scheduler hands tests out in collection order as workers free up; the slow
system, demo and browser tests would otherwise start last and set the suite's wall time alone.
"""

from __future__ import annotations

import pytest

# Longest first (minutes each on 2 cores): booted systems, the whole demo, then every other slow test.
_FIRST = ("tests/system/", "tests/demo/", "tests/evidence/test_end_to_end.py")


def _rank(item: pytest.Item) -> int:
    path = item.nodeid
    for rank, prefix in enumerate(_FIRST):
        if path.startswith(prefix):
            return rank
    return len(_FIRST) if item.get_closest_marker("slow") else len(_FIRST) + 1


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    items.sort(key=_rank)  # stable: the order within each rank is the files' own
