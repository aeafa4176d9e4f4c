"""The one way tests wait: poll observable state until it holds or a deadline passes, then fail naming it.

Never sleep before an assertion or a kill: wait here on what the code under test makes visible (a row,
a file, a request seen by a server). A ManualClock can be moved meanwhile for code that waits on it.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")


class Clock:  # the part of agent.clock.ManualClock used here
    def advance(self, seconds: float) -> None: ...


def wait_until(cond: Callable[[], T], timeout: float = 20.0, what: str = "condition", *,
               interval: float = 0.05, clock: Clock | None = None, step: float = 0.0,
               proc: subprocess.Popen | None = None, detail: Callable[[], str] | None = None) -> T:
    """Return cond()'s first truthy value; raise AssertionError naming `what` after `timeout` seconds.

    `clock`/`step`: advance a manual clock by `step` between polls. `proc`: stop early if that process
    has exited. `detail`: text added to the failure (a log tail)."""
    deadline = time.monotonic() + timeout
    while True:
        value = cond()
        if value:
            return value
        if time.monotonic() >= deadline or (proc is not None and proc.poll() is not None):
            break
        if clock is not None and step:
            clock.advance(step)
        time.sleep(interval)
    value = cond()
    if value:
        return value
    exited = proc is not None and proc.poll() is not None
    why = "process exited" if exited else f"timed out after {timeout:g} s"
    extra = f"\n{detail()}" if detail is not None else ""
    raise AssertionError(f"{why} waiting for {what}{extra}")


def holds_within(cond: Callable[[], Any], timeout: float, **kw: Any) -> bool:
    """True if cond() becomes truthy within `timeout` (for tests that assert on the boolean)."""
    try:
        wait_until(cond, timeout, **kw)
    except AssertionError:
        return False
    return True
