"""Thread supervision: a dead or hung consumer is reported, never waited on forever; the analysis
thread cannot block on a dead event writer, and a dead writer stops the pipeline (the runner then
exits non-zero and systemd restarts the unit)."""

from __future__ import annotations

import queue
import re
import threading
from pathlib import Path

import pytest

from agent.clock import ManualClock
from agent.events.writer import ClosedEvent, EventWriter
from agent.threads import ConsumerDead, put, supervised
from tests.agent.test_events_clips import _config, _event
from tests.waiting import wait_until


def test_put_on_a_dead_consumers_full_queue_raises_instead_of_blocking() -> None:
    q: queue.Queue[int] = queue.Queue(1)
    q.put(0)
    deaths: list[BaseException] = []
    consumer = supervised("consumer", lambda: (_ for _ in ()).throw(RuntimeError("a bug")), deaths.append)
    wait_until(lambda: not consumer.is_alive(), 10, "the consumer to die")
    assert isinstance(deaths[0], RuntimeError)  # reported, with its traceback logged
    with pytest.raises(ConsumerDead, match="consumer thread is not running"):
        put(q, 1, consumer, "work")


def test_put_gives_up_on_a_hung_consumer_and_honours_stop() -> None:
    q: queue.Queue[int] = queue.Queue(1)
    q.put(0)
    hung = threading.Event()
    consumer = supervised("hung", hung.wait)
    try:
        with pytest.raises(ConsumerDead, match="hung consumer"):
            put(q, 1, consumer, "work", give_up_s=1.0)
        stop = threading.Event()
        stop.set()
        assert put(q, 1, consumer, "work", stop=stop) is False
    finally:
        hung.set()


def test_a_dead_event_writer_is_reported_and_never_blocks_the_analysis_thread(tmp_path) -> None:
    def broken_lookup(conn, start, end):
        raise RuntimeError("a bug in the footage lookup")

    deaths: list[BaseException] = []
    writer = EventWriter(_config(tmp_path, masks=False), tmp_path, ManualClock(), threading.Event(),
                         covering=broken_lookup, maxsize=1, on_death=deaths.append)
    writer.start()
    writer.submit(ClosedEvent(_event(3.0, 5.0), None))
    wait_until(lambda: deaths, 20, "the writer's death to be reported")
    assert not writer.is_alive() and not writer.health().alive
    with pytest.raises(ConsumerDead, match="event-writer thread is not running"):
        for start in range(10, 100, 10):  # fills the 1-slot queue, then fails instead of waiting
            writer.submit(ClosedEvent(_event(float(start), start + 2.0), None))


def test_every_agent_thread_is_started_through_supervised() -> None:
    """One supervision helper for every thread (upload's lanes, intake and link watch included)."""
    root = Path(__file__).resolve().parents[2] / "agent"
    direct = [
        f"{path.relative_to(root.parent)}:{n}"
        for path in sorted(root.rglob("*.py"))
        if path.name != "threads.py"
        for n, line in enumerate(path.read_text().splitlines(), 1)
        if re.search(r"\bThread\(", line)
    ]
    assert not direct, f"threads started without agent.threads.supervised: {direct}"
