"""A fault-injecting TCP proxy: a unit's 4G link in tests, benchmarks/upload.py and `make demo`.

asyncio on its own thread: throttles to a bit rate (one shared link per direction, like a 4G uplink),
adds one-way latency, resets connections after N upstream bytes, stalls, or cuts the link entirely.
"""

from __future__ import annotations

import asyncio
import re
import socket
import struct
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import format_datetime

CHUNK = 4096
SLACK_S = 0.05


@dataclass
class LinkState:
    rate_bps: float = 0.0  # bits per second each way; 0 = unlimited
    latency_s: float = 0.0  # added one-way delay
    reset_after: int | None = None  # reset every connection once this many more upstream bytes passed
    stalled: bool = False  # hold all data, keep connections open
    cut: bool = False  # refuse and reset everything
    max_skew_s: float | None = (
        None  # answer like S3 (403 RequestTimeTooSkewed) to a request signed too far off
    )
    bytes_up: int = 0  # client -> server bytes forwarded (what the uplink carried)
    bytes_up_sent: int = 0  # client -> proxy bytes the proxy's TCP received: what the unit put on the link
    bytes_down: int = 0
    resets: int = 0
    refused: int = 0  # connections refused while cut
    next_free: dict[str, float] = field(default_factory=lambda: {"up": 0.0, "down": 0.0})


def _rst(writer: asyncio.StreamWriter) -> None:
    sock = writer.get_extra_info("socket")
    if sock is not None:
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        except OSError:
            pass
    writer.transport.abort()


def _tcp_bytes_received(sock: socket.socket | None) -> int | None:
    """Bytes this end's kernel received in order on a TCP socket (tcp_info.tcpi_bytes_received, Linux
    4.1+), read or not; None where unknown."""
    if sock is None or not hasattr(socket, "TCP_INFO"):
        return None
    try:
        info = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 256)
    except OSError:
        return None
    return struct.unpack_from("Q", info, 128)[0] if len(info) >= 136 else None


class _UplinkProtocol(asyncio.StreamReaderProtocol):
    """A client connection that counts the bytes the client put on the link as its TCP received them:
    what the proxy read, plus, when the connection ends, what its kernel still held unread (a client
    killed with unread data in its socket resets the connection, and asyncio then drops what it had
    buffered), so `bytes_up_sent` is what crossed the unit's link whatever the proxy did with it."""

    def __init__(
        self, link: LinkState, loop: asyncio.AbstractEventLoop, cb: Callable[..., Awaitable[None]]
    ) -> None:
        super().__init__(asyncio.StreamReader(loop=loop), cb, loop=loop)
        self._link = link
        self._sock: socket.socket | None = None
        self._counted = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._sock = transport.get_extra_info("socket")
        super().connection_made(transport)  # type: ignore[arg-type]

    def data_received(self, data: bytes) -> None:
        self._counted += len(data)
        self._link.bytes_up_sent += len(data)
        super().data_received(data)

    def connection_lost(self, exc: Exception | None) -> None:
        received = _tcp_bytes_received(self._sock)  # the socket is closed only after this returns
        if received is not None and received > self._counted:
            self._link.bytes_up_sent += received - self._counted
            self._counted = received
        super().connection_lost(exc)


def _quiet_cancel(loop: asyncio.AbstractEventLoop, context: dict) -> None:
    """Connections cancelled by stop() are expected; anything else is still reported."""
    if isinstance(context.get("exception"), asyncio.CancelledError):
        return
    loop.default_exception_handler(context)


def _skewed(data: bytes, max_skew_s: float) -> bool:
    """Does this chunk start a request whose X-Amz-Date is more than max_skew_s from the real time?"""
    m = re.search(rb"(?im)^x-amz-date:\s*(\d{8}T\d{6}Z)", data)
    if not m:
        return False
    signed = datetime.strptime(m.group(1).decode(), "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC).timestamp()
    return abs(signed - time.time()) > max_skew_s


def _skew_answer() -> bytes:
    now = datetime.now(UTC)
    body = (
        '<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>RequestTimeTooSkewed</Code>'
        "<Message>The difference between the request time and the current time is too large.</Message>"
        f"<ServerTime>{now:%Y-%m-%dT%H:%M:%SZ}</ServerTime>"
        "<MaxAllowedSkewMilliseconds>900000</MaxAllowedSkewMilliseconds></Error>"
    ).encode()
    head = (
        f"HTTP/1.1 403 Forbidden\r\nContent-Type: application/xml\r\n"
        f"Date: {format_datetime(now, usegmt=True)}\r\nContent-Length: {len(body)}\r\n"
        "Connection: close\r\n\r\n"
    ).encode()
    return head + body


class FaultProxy:
    """FaultProxy(host, port).start() -> .url; change .link fields (or use the helpers) at any time.

    Two proxies given the same LinkState share one link (rate, cut, byte counts): a unit's uploads
    and its heartbeats go over the same 4G uplink."""

    def __init__(self, target_host: str, target_port: int, link: LinkState | None = None) -> None:
        self.target = (target_host, target_port)
        self.link = link if link is not None else LinkState()
        self.port = 0
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="faultproxy", daemon=True)
        self._server: asyncio.base_events.Server | None = None
        self._conns: set[asyncio.StreamWriter] = set()
        self._loop.set_exception_handler(_quiet_cancel)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> FaultProxy:
        self._thread.start()
        def uplink() -> _UplinkProtocol:  # asyncio.start_server's factory, counting what arrives
            return _UplinkProtocol(self.link, self._loop, self._handle)

        self._server = asyncio.run_coroutine_threadsafe(
            self._loop.create_server(uplink, "127.0.0.1", 0), self._loop
        ).result(5)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    def stop(self) -> None:
        async def _close() -> None:
            assert self._server is not None
            self._server.close()
            for w in list(self._conns):
                _rst(w)
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

        asyncio.run_coroutine_threadsafe(_close(), self._loop).result(5)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)

    # --- faults -------------------------------------------------------------------------------
    def cut(self) -> None:
        self.link.cut = True
        self._loop.call_soon_threadsafe(self._reset_all)

    def restore(self) -> None:
        self.link.cut = False
        self.link.stalled = False

    def reset_after(self, n: int) -> None:
        self.link.reset_after = self.link.bytes_up + n

    def _reset_all(self) -> None:
        for w in list(self._conns):
            _rst(w)
        self.link.resets += 1

    # --- plumbing -----------------------------------------------------------------------------
    async def _handle(self, c_reader: asyncio.StreamReader, c_writer: asyncio.StreamWriter) -> None:
        if self.link.cut:
            self.link.refused += 1
            _rst(c_writer)
            return
        try:
            s_reader, s_writer = await asyncio.open_connection(*self.target)
        except OSError:
            _rst(c_writer)
            return
        self._conns.update((c_writer, s_writer))
        try:
            await asyncio.gather(
                self._pipe(c_reader, s_writer, "up", c_writer),
                self._pipe(s_reader, c_writer, "down", s_writer),
                return_exceptions=True,
            )
        finally:
            for w in (c_writer, s_writer):
                self._conns.discard(w)
                w.transport.abort()

    async def _pipe(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        way: str,
        other: asyncio.StreamWriter,
    ) -> None:
        """Reader side: timestamp chunks into a small queue (latency without limiting throughput)."""
        fifo: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue(maxsize=64)
        sender = asyncio.ensure_future(self._drain(fifo, writer, way, other))
        try:
            while not sender.done():
                data = await reader.read(CHUNK)
                await fifo.put((time.monotonic(), data))
                if not data:
                    break
            await sender
        finally:
            sender.cancel()

    async def _drain(
        self,
        fifo: asyncio.Queue[tuple[float, bytes]],
        writer: asyncio.StreamWriter,
        way: str,
        other: asyncio.StreamWriter,
    ) -> None:
        while True:
            arrived, data = await fifo.get()
            if not data:
                if writer.can_write_eof():
                    writer.write_eof()
                return
            while self.link.stalled and not self.link.cut:
                await asyncio.sleep(0.02)
            if self.link.cut:
                _rst(writer)
                _rst(other)
                return
            if self.link.latency_s:
                await asyncio.sleep(max(0.0, arrived + self.link.latency_s - time.monotonic()))
            if way == "up" and self.link.max_skew_s is not None and _skewed(data, self.link.max_skew_s):
                other.write(_skew_answer())
                await other.drain()
                _rst(writer)
                other.transport.close()
                return
            ready = arrived + self.link.latency_s
            if way == "up" and self.link.reset_after is not None:
                room = self.link.reset_after - self.link.bytes_up
                if room <= len(data):
                    await self._send(writer, data[: max(0, room)], way, ready)
                    self.link.reset_after = None
                    self._reset_all()
                    return
            await self._send(writer, data, way, ready)

    async def _send(self, writer: asyncio.StreamWriter, data: bytes, way: str, ready: float) -> None:
        """Forward at the link rate. The link is busy from when the data was there to go (`ready`), so a
        busy machine waking this thread late does not lose link time; an idle link banks at most SLACK_S."""
        if self.link.rate_bps > 0 and data:
            now = time.monotonic()
            start = max(min(ready, now - SLACK_S), self.link.next_free[way])
            self.link.next_free[way] = start + len(data) * 8 / self.link.rate_bps
            await asyncio.sleep(self.link.next_free[way] - now)
        writer.write(data)
        await writer.drain()
        if way == "up":
            self.link.bytes_up += len(data)
        else:
            self.link.bytes_down += len(data)
