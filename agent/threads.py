"""Thread supervision and the Service protocol: how every long-running part of the agent is run.

`supervised()` starts a named daemon thread whose death is never silent: an AgentError is logged in
one line, anything else with its traceback, and `on_death` is told (the pipeline stops and the runner
exits non-zero, so systemd restarts the unit). `put()` is the one way a producer hands work to a
consumer thread: bounded waits, and a dead consumer raises ConsumerDead instead of blocking forever.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol, TypeVar

from agent.errors import AgentError

log = logging.getLogger(__name__)

T = TypeVar("T")
PUT_WAIT_S = 0.5  # each bounded wait of put(); the consumer is checked between waits
PUT_GIVE_UP_S = 120.0  # a consumer alive but taking nothing for this long counts as dead (hung)


@dataclass(frozen=True)
class Health:
    alive: bool
    detail: str = ""


class Service(Protocol):
    """What the runner starts and stops: built explicitly with its config and clock, then start();
    stop() asks it to finish (never blocks), join(timeout) -> True when it has; health() any time."""

    name: str

    def start(self) -> None: ...
    def stop(self) -> None: ...
    def join(self, timeout: float | None = None) -> bool: ...
    def health(self) -> Health: ...


class ConsumerDead(AgentError):
    """The thread that should take this work has died (a bug or an unexpected error)."""


def supervised(name: str, target: Callable[[], None],
               on_death: Callable[[BaseException], None] | None = None) -> threading.Thread:
    """A started daemon thread running `target`; an exception is logged and passed to `on_death`."""

    def run() -> None:
        try:
            target()
        except BaseException as err:
            if isinstance(err, AgentError):
                log.error("%s thread stopped: %s", name, err)
            else:
                log.exception("%s thread died", name)
            if on_death is not None:
                on_death(err)

    thread = threading.Thread(target=run, name=name, daemon=True)
    thread.start()
    return thread


def put(q: queue.Queue[T], item: T, consumer: threading.Thread | None, what: str,
        stop: threading.Event | None = None, give_up_s: float = PUT_GIVE_UP_S) -> bool:
    """Put `item` on a bounded queue, waiting at most PUT_WAIT_S at a time; raise ConsumerDead if
    the consumer thread has died or took nothing for `give_up_s`; False if `stop` was set first."""
    waited = 0.0
    while True:
        try:
            q.put(item, timeout=PUT_WAIT_S)
            return True
        except queue.Full:
            waited += PUT_WAIT_S
            if consumer is not None and not consumer.is_alive():
                raise ConsumerDead(f"{what}: the {consumer.name} thread is not running") from None
            if waited >= give_up_s:
                raise ConsumerDead(f"{what}: nothing taken for {give_up_s:.0f} s (hung consumer)") from None
            if stop is not None and stop.is_set():
                return False
