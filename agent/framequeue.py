"""A frame queue bounded in bytes, not in frames: where the capture thread meets the recorder and
the analyser (agent.pipeline), so the memory it can hold is the same at 480p and at 1080p.

Same calls as queue.Queue for what the pipeline uses: put(item, timeout), put_nowait, get, get_nowait.
"""

from __future__ import annotations

import queue
import threading
import time
from collections import deque
from typing import Generic, TypeVar

T = TypeVar("T")


def frame_bytes(item: object) -> int:
    """Bytes of the arrays a frame holds (its full image and its analysis frame); 0 for a marker."""
    total = 0
    for name in ("image", "gray"):
        arr = getattr(item, name, None)
        total += int(getattr(arr, "nbytes", 0) or 0)
    return total


class ByteQueue(Generic[T]):
    """FIFO holding at most `max_bytes` of frames (sizes by `frame_bytes`). One item is always let in
    when the queue is empty, so a frame larger than the budget still passes (alone). Markers
    (None) cost nothing and are never refused."""

    def __init__(self, max_bytes: int) -> None:
        if max_bytes <= 0:
            raise ValueError("max_bytes must be positive")
        self.max_bytes = max_bytes
        self._items: deque[tuple[T, int]] = deque()
        self._bytes = 0
        self._cond = threading.Condition()
        self.peak_bytes = 0

    @property
    def bytes(self) -> int:
        return self._bytes

    def qsize(self) -> int:
        return len(self._items)

    def _fits(self, size: int) -> bool:
        return size == 0 or not self._items or self._bytes + size <= self.max_bytes

    def put(self, item: T, block: bool = True, timeout: float | None = None) -> None:
        size = frame_bytes(item)
        with self._cond:
            if not self._fits(size):
                if not block:
                    raise queue.Full
                deadline = None if timeout is None else time.monotonic() + timeout
                while not self._fits(size):
                    left = None if deadline is None else deadline - time.monotonic()
                    if left is not None and left <= 0:
                        raise queue.Full
                    self._cond.wait(left)
            self._items.append((item, size))
            self._bytes += size
            self.peak_bytes = max(self.peak_bytes, self._bytes)
            self._cond.notify_all()

    def put_nowait(self, item: T) -> None:
        self.put(item, block=False)

    def get(self, block: bool = True, timeout: float | None = None) -> T:
        with self._cond:
            if not self._items:
                if not block:
                    raise queue.Empty
                deadline = None if timeout is None else time.monotonic() + timeout
                while not self._items:
                    left = None if deadline is None else deadline - time.monotonic()
                    if left is not None and left <= 0:
                        raise queue.Empty
                    self._cond.wait(left)
            item, size = self._items.popleft()
            self._bytes -= size
            self._cond.notify_all()
            return item

    def get_nowait(self) -> T:
        return self.get(block=False)
