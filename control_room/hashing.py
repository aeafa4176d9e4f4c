"""Password hashing off the threads that serve units: a small bounded pool of low-priority threads.

A login waits for its hash here; when every slot is taken (a login flood) it is refused at once with
HashingBusy (503) instead of queueing, so a flood can hold at most `workers + pending` request threads
and one core's worth of scrypt, and the unit API keeps its threads and the other core.
"""

from __future__ import annotations

import logging
import os
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from functools import cache

from werkzeug.security import check_password_hash, generate_password_hash

from control_room.errors import HashingBusy

log = logging.getLogger(__name__)
# werkzeug's scrypt at its default cost (N=2**15, r=8, p=1: ~0.17 s and 32 MiB a hash). Read at each
# call: the test suite alone sets a cheaper cost (tests/conftest.py; one test checks this one).
METHOD = "scrypt"
BUSY_MESSAGE = "The login service is busy: try again in a moment."
HASH_NICE = 19  # the lowest: hashing yields the CPU to request threads and to a unit API process beside
#                (Linux: nice is per thread; 10 still took 18 s of scrypt from 2 cores in a 30 s flood)


def _lower_priority() -> None:
    try:
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), HASH_NICE)
    except (AttributeError, OSError) as exc:  # not Linux, or not permitted: hashing still works
        log.debug("could not lower the hashing thread's priority: %s", exc)


def hash_password(password: str) -> str:
    """The stored form of a password: salted, slow (METHOD); the password itself is never stored."""
    return generate_password_hash(password, method=METHOD)


@cache
def decoy_hash() -> str:
    """A hash of no one's password: checked for unknown or disabled names so they cost the same time."""
    return hash_password(os.urandom(24).hex())


def _check_decoy(password: str) -> bool:
    return check_password_hash(decoy_hash(), password)


class HashPool:
    """`workers` hashing threads and `pending` waiting places; beyond that, HashingBusy at once."""

    def __init__(self, workers: int = 1, pending: int = 2, timeout_s: float = 30.0) -> None:
        self._executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="password-hash",
                                            initializer=_lower_priority)
        self._slots = threading.BoundedSemaphore(workers + pending)
        self._timeout_s = timeout_s

    def _run(self, fn, *args: str):  # noqa: ANN001, ANN202
        if not self._slots.acquire(blocking=False):
            raise HashingBusy(BUSY_MESSAGE)
        try:
            future: Future = self._executor.submit(fn, *args)
        except BaseException:
            self._slots.release()
            raise
        future.add_done_callback(lambda _f: self._slots.release())
        return future.result(timeout=self._timeout_s)

    def full(self) -> bool:
        """Whether a hash asked for now would be refused (a moment later a slot may be free)."""
        if not self._slots.acquire(blocking=False):
            return True
        self._slots.release()
        return False

    def check(self, password_hash: str | None, password: str) -> bool:
        """Whether `password` matches; a missing hash is checked against the decoy (same cost)."""
        if not password_hash:
            self._run(_check_decoy, password)
            return False
        return bool(self._run(check_password_hash, password_hash, password))

    def generate(self, password: str) -> str:
        return str(self._run(hash_password, password))

    def shutdown(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)
