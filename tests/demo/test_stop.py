"""The demo supervisor's stop request: Ctrl-C ends `make demo` even when Python drops the
KeyboardInterrupt its handler raised (as it does for one raised while a finaliser runs).
"""

from __future__ import annotations

import signal
import sys
from collections.abc import Iterator

import pytest

from demo import __main__ as supervisor


@pytest.fixture(autouse=True)
def fresh_flag() -> Iterator[None]:
    supervisor.STOP.clear()
    yield
    supervisor.STOP.clear()


class Finalised:
    def __del__(self) -> None:
        supervisor._interrupt(signal.SIGINT, None)  # as if Ctrl-C arrived while this ran


def test_an_interrupt_dropped_by_a_finaliser_still_ends_the_loop(monkeypatch: pytest.MonkeyPatch) -> None:
    dropped: list[object] = []
    monkeypatch.setattr(sys, "unraisablehook", dropped.append)
    Finalised()  # Python reports "Exception ignored in ..." and carries on
    assert [type(x.exc_value) for x in dropped] == [KeyboardInterrupt]  # type: ignore[attr-defined]
    with pytest.raises(KeyboardInterrupt, match="stop requested"):
        supervisor._pause(30.0)  # at once: the flag was set


def test_without_a_stop_the_pause_is_a_plain_wait() -> None:
    supervisor._pause(0.01)
    assert not supervisor.STOP.is_set()
