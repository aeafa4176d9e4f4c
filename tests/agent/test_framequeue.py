"""The frame queues between capture, recorder and analyser are bounded in bytes (agent.framequeue)."""

from __future__ import annotations

import queue
import threading

import numpy as np
import pytest

from agent.framequeue import ByteQueue, frame_bytes
from agent.sources.base import Frame


def _frame(i: int, w: int = 640, h: int = 360) -> Frame:
    return Frame(i, float(i), float(i), np.zeros((h, w, 3), np.uint8), np.zeros((60, 80), np.uint8))


def test_bounded_by_bytes_not_frames() -> None:
    one = frame_bytes(_frame(0))
    assert one == 640 * 360 * 3 + 60 * 80
    q: ByteQueue[Frame | None] = ByteQueue(3 * one)
    for i in range(3):
        q.put_nowait(_frame(i))
    with pytest.raises(queue.Full):
        q.put_nowait(_frame(3))
    with pytest.raises(queue.Full):
        q.put(_frame(3), timeout=0.01)
    q.put_nowait(None)  # the end marker costs nothing and is never refused
    assert q.bytes == 3 * one and q.qsize() == 4
    assert [q.get().index for _ in range(3)] == [0, 1, 2]  # first in, first out
    assert q.get() is None and q.bytes == 0 and q.peak_bytes == 3 * one


def test_a_frame_larger_than_the_budget_passes_alone() -> None:
    q: ByteQueue[Frame] = ByteQueue(1000)
    q.put_nowait(_frame(0))  # empty queue: let in
    with pytest.raises(queue.Full):
        q.put_nowait(_frame(1))
    assert q.get_nowait().index == 0
    with pytest.raises(queue.Empty):
        q.get_nowait()
    with pytest.raises(queue.Empty):
        q.get(timeout=0.01)


def test_a_waiting_producer_gets_in_when_the_consumer_takes() -> None:
    q: ByteQueue[Frame] = ByteQueue(frame_bytes(_frame(0)))
    q.put(_frame(0))
    done = threading.Event()

    def produce() -> None:
        q.put(_frame(1), timeout=30)
        done.set()

    t = threading.Thread(target=produce)
    t.start()
    assert q.get(timeout=30).index == 0
    assert done.wait(30)
    t.join(30)
    assert q.get(timeout=30).index == 1


def test_bad_budget_refused() -> None:
    with pytest.raises(ValueError, match="max_bytes"):
        ByteQueue(0)
