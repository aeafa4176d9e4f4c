"""4G economy for the upload lanes: a bandwidth cap on bytes actually sent, and the monthly data budget.

The cap is a token bucket every request body reads through (MeteredReader); the budget counts those
bytes (retries too) per period in agent.db as they go, so snapshots always go and clips wait once the
month's budget is spent, and a kill -9 loses at most the last 64 KiB / 0.25 s of the count (and can
leave counted at most link.UNSENT_MAX + CHUNK that the kernel then drops unsent).
"""

from __future__ import annotations

import io
import os
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from agent.clock import Clock, iso_utc
from agent.upload.queue import UploadQueue

CHUNK = 16 * 1024


class Stopped(Exception):
    """The service is stopping: abandon the request in flight (it is resumed at the next start)."""


class TokenBucket:
    """Bandwidth cap shared by the lanes: take(n) waits until n bytes may be sent. rate 0 = unlimited."""

    def __init__(self, rate_bytes_s: float, clock: Clock, stop: threading.Event, burst_s: float = 0.25):
        self.rate = rate_bytes_s
        self.clock = clock
        self.stop = stop
        self._burst = max(CHUNK, rate_bytes_s * burst_s)
        self._lock = threading.Lock()
        self._tokens = self._burst
        self._last = clock.monotonic()

    def take(self, n: int) -> None:
        if self.rate <= 0:
            if self.stop.is_set():
                raise Stopped
            return
        with self._lock:
            now = self.clock.monotonic()
            self._tokens = min(self._burst, self._tokens + (now - self._last) * self.rate)
            self._last = now
            self._tokens -= n
            wait = -self._tokens / self.rate if self._tokens < 0 else 0.0
        if self.stop.wait(wait) if wait > 0 else self.stop.is_set():
            raise Stopped


class Meter:
    """Counts bytes handed to the upload sockets (every attempt, so retries count too) and persists them
    as they go: `flush(n)` is called at least every `every_bytes` or `every_s`, and at each body's end.

    One per lane thread (flush writes with that thread's database connection)."""

    def __init__(
        self,
        flush: Callable[[int], None] | None = None,
        clock: Clock | None = None,
        every_bytes: int = 64 * 1024,
        every_s: float = 0.25,
    ) -> None:
        self._flush = flush
        self._clock = clock
        self._every_bytes = every_bytes
        self._every_s = every_s
        self._lock = threading.Lock()
        self._n = 0
        self._last = clock.monotonic() if clock else 0.0

    def add(self, n: int) -> None:
        with self._lock:
            self._n += n
            due = self._n >= self._every_bytes or (
                self._clock is not None and self._clock.monotonic() - self._last >= self._every_s
            )
        if due:
            self.flush()

    def flush(self) -> None:
        if self._flush is None:  # counting only: the owner takes the count with take_all()
            return
        if n := self.take_all():
            self._flush(n)

    def take_all(self) -> int:
        with self._lock:
            n, self._n = self._n, 0
            if self._clock is not None:
                self._last = self._clock.monotonic()
            return n


class MeteredReader(io.RawIOBase):
    """A window [offset, offset+length) of a file, read in small chunks through the bandwidth cap(s);
    every chunk handed out is reported to on_bytes (the budget meter, the link watch)."""

    def __init__(
        self,
        path: Path,
        offset: int,
        length: int,
        buckets: tuple[TokenBucket, ...],
        on_bytes: Callable[[int], None],
    ) -> None:
        super().__init__()
        self._f = open(path, "rb")  # noqa: SIM115 - closed by close()
        self._start = offset
        self._len = length
        self._pos = 0
        self._buckets = buckets
        self._on_bytes = on_bytes
        self._f.seek(offset)

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def __len__(self) -> int:
        return self._len

    def read(self, size: int = -1) -> bytes:
        left = self._len - self._pos
        n = min(CHUNK, left if size is None or size < 0 else min(size, left))
        if n <= 0:
            return b""
        for bucket in self._buckets:
            bucket.take(n)
        data = self._f.read(n)
        self._pos += len(data)
        self._on_bytes(len(data))
        return data

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        base = {os.SEEK_SET: 0, os.SEEK_CUR: self._pos, os.SEEK_END: self._len}[whence]
        self._pos = max(0, min(self._len, base + offset))
        self._f.seek(self._start + self._pos)
        return self._pos

    def tell(self) -> int:
        return self._pos

    def close(self) -> None:
        self._f.close()
        super().close()


def request_head_bytes(request: Any) -> int:
    """Bytes of an HTTP/1.1 request line and headers as they go on the wire (botocore's prepared request;
    urllib3 adds Host and Accept-Encoding), so the budget counts what the uplink carries, not only bodies."""
    url = urlsplit(request.url)
    target = (url.path or "/") + (f"?{url.query}" if url.query else "")
    head = f"{request.method} {target} HTTP/1.1\r\n".encode()
    lines = sum(len(str(k)) + len(str(v)) + 4 for k, v in request.headers.items())
    return len(head) + lines + len(f"Host: {url.netloc}\r\nAccept-Encoding: identity\r\n\r\n")


def request_bytes(request: Any) -> int:
    """What a request puts on the wire apart from a file body (those count through MeteredReader):
    its head, and a body given as bytes (CompleteMultipartUpload's part list, for one)."""
    body = request.body
    if isinstance(body, str):
        body = body.encode()
    return request_head_bytes(request) + (len(body) if isinstance(body, (bytes, bytearray)) else 0)


def period_start(now: datetime, reset_day: int) -> datetime:
    """Start (00:00 UTC on the reset day) of the budget period containing `now`."""
    if now.day >= reset_day:
        return datetime(now.year, now.month, reset_day, tzinfo=UTC)
    year, month = (now.year, now.month - 1) if now.month > 1 else (now.year - 1, 12)
    return datetime(year, month, reset_day, tzinfo=UTC)


class DataBudget:
    """Monthly data budget kept in agent.db (upload_meta 'usage:<period start>'). 0 MB = unlimited."""

    def __init__(self, budget_mb: float, reset_day: int, clock: Clock) -> None:
        self.budget_bytes = int(budget_mb * 1_000_000)
        self._reset_day = reset_day
        self._clock = clock

    def period(self) -> str:
        return iso_utc(period_start(self._clock.now(), self._reset_day).timestamp())

    def used(self, queue: UploadQueue) -> int:
        return int(queue.meta(f"usage:{self.period()}") or 0)

    def add(self, queue: UploadQueue, n: int) -> None:
        if n > 0:
            queue.add_to_meta(f"usage:{self.period()}", n)

    def allows(self, queue: UploadQueue, size: int) -> bool:
        """May a clip of `size` bytes go now? Snapshots and metadata never ask."""
        return self.budget_bytes <= 0 or self.used(queue) + size <= self.budget_bytes
