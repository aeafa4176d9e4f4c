"""Whole-suite test ordering for `make test`: the longest tests start first, each on its own worker.

`make test` runs pytest-xdist with `--dist load --maxschedchunk 1`: each worker holds the test it
runs and the next one, and gets one more from the front of this order each time it finishes one.
So a test handed to a worker that is running a long test waits for it: the order below gives each
long test a short one to hold, so no long test waits behind another.
"""

from __future__ import annotations

import shutil
import tempfile

import pytest

from control_room import hashing
from tests import jinja_cache, routing_cache

# Password hashes in this process: scrypt at N=2**10 instead of 2**15 (~5 ms instead of ~170 ms; a few
# hundred are made and checked). The shipped cost is checked by test_models in a fresh interpreter,
# and control rooms started as commands (cctv-control-room serve, the demo) hash at that cost.
hashing.METHOD = "scrypt:1024:8:1"

# Each test's create_app compiled the same URL builders again (46 of its 75 ms): compiled once instead.
routing_cache.install()
# ... and its Jinja environment compiled the same page templates again: compiled once, checked by checksum.
jinja_cache.install()

# Longest first (minutes each on 2 cores): booted systems, the whole demo, then every other slow test.
_FIRST = ("tests/system/test_provisioning_e2e.py", "tests/demo/test_demo_check.py",
          "tests/system/test_systemd_nspawn.py", "tests/demo/test_make_demo.py",
          "tests/evidence/test_end_to_end.py")
_SHORT = ("tests/agent/test_config.py", "tests/protocol/")  # well under a second each


# The agent keeps retention.min_free_percent (10 % by default) of its disk free by deleting footage: on
# a host disk fuller than that the recording tests fail in confusing ways (clips deleted before upload).
_MIN_FREE_PERCENT = 12.0


def pytest_sessionstart(session: pytest.Session) -> None:
    if getattr(session.config, "workerinput", None) is not None:
        return  # checked once, by the controller
    where = tempfile.gettempdir()
    usage = shutil.disk_usage(where)
    free = 100.0 * usage.free / usage.total
    if free < _MIN_FREE_PERCENT:
        need = f"{_MIN_FREE_PERCENT:.0f} %"
        pytest.exit(f"{where}: {free:.1f} % of the disk is free; the agent deletes footage to keep 10 % "
                    f"free, so its tests need at least {need}: free some space", returncode=3)


def _rank(item: pytest.Item) -> int:
    path = item.nodeid
    for rank, prefix in enumerate(_FIRST):
        if path.startswith(prefix):
            return rank
    return len(_FIRST) if item.get_closest_marker("slow") else len(_FIRST) + 1


def _workers(config: pytest.Config) -> int:
    workerinput = getattr(config, "workerinput", None)
    return int(workerinput["workercount"]) if workerinput else 1


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    items.sort(key=_rank)  # stable: the order within each rank is the files' own
    n = _workers(config)
    longest = [i for i in items[:n] if _rank(i) < len(_FIRST)]
    short = [i for i in items if i.nodeid.startswith(_SHORT)][:2 * len(longest)]
    if not longest or len(short) < 2 * len(longest):
        return
    # Each worker starts with two tests (one long, one short); finishing the short one it is given
    # one more, which waits behind its long test: another short one.
    head = [x for pair in zip(longest, short, strict=False) for x in pair] + short[len(longest):]
    taken = {id(i) for i in head}
    items[:] = head + [i for i in items if id(i) not in taken]
