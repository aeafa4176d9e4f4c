"""Link watch for the upload lanes: every request body is watched for bytes actually moving, so a slow
4G link is never mistaken for a dead one, and the link rate measured from finished bodies sizes parts.

A request is aborted (its socket shut down -> a transient error -> retried) only when nothing has moved
for the stall time AND the bytes already handed over should have crossed the link at the measured rate.
Upload sockets keep little unsent (UNSENT_MAX), so what the budget counted has nearly all left the unit.
"""

from __future__ import annotations

import fcntl
import logging
import math
import socket
import struct
import termios
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from botocore.awsrequest import (
    AWSHTTPConnection,
    AWSHTTPConnectionPool,
    AWSHTTPSConnection,
    AWSHTTPSConnectionPool,
)

from agent.clock import Clock

log = logging.getLogger(__name__)

MIB = 1024 * 1024
MIN_PART = 5 * MIB  # S3's smallest part (all but the last)
MAX_PARTS = 10_000  # S3's largest part count
PART_LINK_S = 60.0  # a part takes about this long on the measured link: a cut costs at most that
RATE_FLOOR = 16_000.0  # bytes/s assumed when nothing is measured yet (128 kbit/s: slower than 4G)
RATE_MIN_BODY = 256 * 1024  # smaller bodies measure latency more than the link
RATE_ALPHA = 0.3  # weight of the newest measurement in the running estimate
SAFETY = 0.7  # bytes handed over are given their time at this fraction of the measured rate
TICK_S = 0.25
BACKSTOP_S = 6 * 3600.0  # socket read timeout of watched requests: the watch decides long before
EXPECT_WAIT_S = 1.0  # botocore's wait for "100 Continue" before it sends a body
# Bytes a lane may leave in its socket not yet sent (TCP_NOTSENT_LOWAT): a kill -9 can discard at most
# this much that the budget already counted. It bounds only the backlog waiting to go, not the data in
# flight (cwnd, sized by the kernel to the link's bandwidth-delay product), so it never throttles: a
# lane refills it in 16 KiB reads, and 128 KiB lasts 50 ms at 20 Mbit/s, 0.5 s at 2 Mbit/s.
UNSENT_MAX = 128 * 1024


def _outq(sock: socket.socket | None) -> int | None:
    """Bytes still in the socket's send queue (not yet acknowledged by the next hop); None if unknown."""
    if sock is None:
        return None
    try:
        raw = fcntl.ioctl(sock.fileno(), termios.TIOCOUTQ, b"\0\0\0\0")
    except (OSError, ValueError):
        return None
    return int(struct.unpack("i", raw)[0])


class LinkRate:
    """Running estimate (bytes/s) of the uplink, from bodies that went through end to end."""

    def __init__(self, initial: float | None = None) -> None:
        self._lock = threading.Lock()
        self._rate = initial if initial and initial > 0 and math.isfinite(initial) else None

    @property
    def bytes_s(self) -> float | None:
        with self._lock:
            return self._rate

    def observe_saved(self, saved: str | None) -> None:
        """Start from the rate measured before a restart (upload_meta), if there is one."""
        try:
            rate = float(saved or "")
        except ValueError:
            return
        if rate > 0 and math.isfinite(rate):
            with self._lock:
                self._rate = rate

    def observe(self, nbytes: int, seconds: float) -> float | None:
        """A body of nbytes was answered seconds after its first byte; returns the new estimate."""
        if nbytes < RATE_MIN_BODY or seconds <= 0:
            return self.bytes_s
        rate = nbytes / seconds
        with self._lock:
            self._rate = rate if self._rate is None else (1 - RATE_ALPHA) * self._rate + RATE_ALPHA * rate
            return self._rate

    def safe(self) -> float:
        """A rate the link is very likely to reach (for deadlines): never above the estimate."""
        rate = self.bytes_s
        return max(RATE_FLOOR, SAFETY * rate) if rate else RATE_FLOOR


def choose_part_size(size: int, rate_bytes_s: float | None, max_part: int) -> int:
    """Part size for a new multipart upload: about PART_LINK_S of the measured link (so a cut costs
    little on a slow link), at least S3's 5 MiB, at most the configured part size, <= 10000 parts."""
    want = MIN_PART if not rate_bytes_s else int(rate_bytes_s * PART_LINK_S)
    part = max(MIN_PART, min(max_part, want))
    return max(part, -(-size // MAX_PARTS))


class Transfer:
    """One request body on its way: bytes handed to the socket, the socket itself, and progress times."""

    def __init__(self, length: int, stall_s: float, safe_rate: float, now: float, key: str) -> None:
        self.length = length
        self.stall_s = stall_s
        self.safe_rate = safe_rate
        self.key = key
        self.sent = 0  # bytes handed to the socket (written by the lane thread)
        self.sock: socket.socket | None = None
        self.created = now
        self.first_byte: float | None = None
        self.last_progress = now
        self.aborted: str | None = None
        self._seen_sent = 0
        self._seen_outq: int | None = None

    def on_sent(self, n: int, now: float) -> None:
        if self.first_byte is None:
            self.first_byte = now
        self.sent += n

    def check(self, now: float) -> str | None:
        """Called by the watch thread; returns a reason when the transfer is stalled."""
        sock = self.sock
        if sock is None:  # not on a socket yet: connecting has its own timeout, nothing to abort
            self.last_progress = now
            return None
        outq = _outq(sock)
        drained = outq is not None and self._seen_outq is not None and outq < self._seen_outq
        if self.sent > self._seen_sent or drained or self._seen_outq is None:
            self.last_progress = now
        self._seen_sent = self.sent
        self._seen_outq = -1 if outq is None else outq
        idle = now - self.last_progress
        # before the body: botocore waits up to 1 s for the server's "100 Continue"
        if idle <= self.stall_s + (EXPECT_WAIT_S if self.first_byte is None else 0.0):
            return None
        # bytes that left our socket may still sit in buffers on the way (modem, proxy): give them
        # their time at a rate the link surely reaches before calling the link dead
        acked = self.sent - (outq or 0)
        due = (self.first_byte or self.created) + acked / self.safe_rate
        if now <= due + self.stall_s:
            return None
        return f"stalled: nothing moved for {idle:.0f} s ({self.sent} of {self.length} bytes handed over)"

    def abort(self, reason: str) -> None:
        sock = self.sock
        self.aborted = reason
        try:
            sock.shutdown(socket.SHUT_RDWR)  # wakes the lane thread blocked in send or recv
        except (OSError, AttributeError):
            pass


_current = threading.local()


def _register(conn: Any) -> None:
    t: Transfer | None = getattr(_current, "transfer", None)
    if t is not None and t.sock is None and getattr(conn, "sock", None) is not None:
        t.sock = conn.sock
        # urllib3 sends a body under the connect timeout (a new connection) or the last request's read
        # timeout (a reused one); with little unsent allowed (limit_unsent) a send waits for the link,
        # and the watch, not a fixed timeout, decides when a link that stopped moving is dead
        conn.sock.settimeout(BACKSTOP_S)


def limit_unsent(sock: socket.socket | None, limit: int = UNSENT_MAX) -> bool:
    """Keep at most about `limit` bytes waiting unsent in the socket (a blocking send waits instead;
    Linux and macOS); False where the system has no such option."""
    opt = getattr(socket, "TCP_NOTSENT_LOWAT", None)
    if sock is None or opt is None:
        return False
    try:
        sock.setsockopt(socket.IPPROTO_TCP, opt, limit)
    except OSError:
        return False
    return True


class _Watched:
    """Mixed into botocore's connection classes: a capped unsent backlog, and bodies under the watch."""

    sock: socket.socket | None

    def connect(self) -> None:
        super().connect()  # type: ignore[misc]
        limit_unsent(self.sock)

    def send(self, data: Any) -> Any:
        _register(self)
        return super().send(data)  # type: ignore[misc]


class _WatchedHTTPConnection(_Watched, AWSHTTPConnection):
    pass


class _WatchedHTTPSConnection(_Watched, AWSHTTPSConnection):
    pass


class _WatchedHTTPPool(AWSHTTPConnectionPool):
    ConnectionCls = _WatchedHTTPConnection


class _WatchedHTTPSPool(AWSHTTPSConnectionPool):
    ConnectionCls = _WatchedHTTPSConnection


def install(client: Any) -> None:
    """Let the watch see the sockets of a boto3 client (before its first request).

    botocore has no public hook for its connection class; its URLLib3Session keeps the pool classes
    in one dict shared with its PoolManager, so replacing them there is all it takes (checked by
    tests/upload/test_stall.py against the installed botocore)."""
    pools = client._endpoint.http_session._pool_classes_by_scheme
    pools.update({"http": _WatchedHTTPPool, "https": _WatchedHTTPSPool})


def long_read_timeout(context: dict[str, Any], **_: Any) -> None:
    """botocore before-call hook for body requests: no fixed read timeout after the body is written
    (the link watch ends a stalled request instead)."""
    context["read_timeout"] = BACKSTOP_S


class LinkWatch:
    """One thread per upload service that aborts stalled transfers; lanes register theirs by watch()."""

    def __init__(self, clock: Clock, stop: threading.Event, rate: LinkRate) -> None:
        self._clock = clock
        self._stop = stop
        self.rate = rate
        self._lock = threading.Lock()
        self._active: set[Transfer] = set()

    @contextmanager
    def watch(self, length: int, stall_s: float, key: str) -> Iterator[Transfer]:
        t = Transfer(length, stall_s, self.rate.safe(), self._clock.monotonic(), key)
        _current.transfer = t
        with self._lock:
            self._active.add(t)
        try:
            yield t
        finally:
            _current.transfer = None
            with self._lock:
                self._active.discard(t)

    def done(self, t: Transfer) -> None:
        """The body was answered: measure the link from it."""
        if t.first_byte is not None and t.sent >= t.length:
            self.rate.observe(t.sent, self._clock.monotonic() - t.first_byte)

    def run(self) -> None:
        while not self._stop.wait(TICK_S):
            now = self._clock.monotonic()
            with self._lock:
                active = list(self._active)
            for t in active:
                if t.aborted is None and (reason := t.check(now)):
                    log.warning("upload of %s: %s; aborting the request to retry it", t.key, reason)
                    t.abort(reason)
