"""sd_notify: tells systemd the agent is ready, alive (watchdog), what it is doing and that it stops.

Used by service.py; one datagram per message to the AF_UNIX socket named in NOTIFY_SOCKET ('@' means
the abstract namespace). Without NOTIFY_SOCKET (not under systemd, tests) every call is a no-op.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from collections.abc import Mapping

log = logging.getLogger(__name__)


def socket_address(name: str) -> str | bytes:
    """The address of NOTIFY_SOCKET: a path, or '@name' for the abstract namespace."""
    if name.startswith("@"):
        return b"\0" + name[1:].encode()
    return name


def watchdog_interval_s(env: Mapping[str, str], pid: int | None = None) -> float | None:
    """How often to feed: half of WATCHDOG_USEC, if the watchdog is meant for this process."""
    usec = env.get("WATCHDOG_USEC", "")
    owner = env.get("WATCHDOG_PID", "")
    if not usec.isdigit() or int(usec) == 0:
        return None
    if owner and owner != str(os.getpid() if pid is None else pid):
        return None
    return int(usec) / 2_000_000


class Notifier:
    """Sends sd_notify messages; thread-safe; never raises (systemd may be gone during shutdown)."""

    def __init__(self, env: Mapping[str, str] | None = None) -> None:
        env = os.environ if env is None else env
        name = env.get("NOTIFY_SOCKET", "")
        self.address = socket_address(name) if name else None
        self.watchdog_s = watchdog_interval_s(env)
        self._lock = threading.Lock()
        self._sock: socket.socket | None = None

    @property
    def enabled(self) -> bool:
        return self.address is not None

    def notify(self, *lines: str) -> bool:
        """Send 'KEY=value' lines as one datagram; True if it was sent."""
        if self.address is None:
            return False
        data = "\n".join(lines).encode()
        with self._lock:
            try:
                if self._sock is None:
                    self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
                    self._sock.setblocking(False)  # never wait on systemd: a full queue drops it
                self._sock.sendto(data, self.address)
                return True
            except OSError as err:
                log.debug("sd_notify failed: %s", err)
                return False

    def ready(self, status: str = "") -> bool:
        return self.notify("READY=1", *([f"STATUS={status}"] if status else []))

    def watchdog(self) -> bool:
        return self.notify("WATCHDOG=1")

    def status(self, text: str) -> bool:
        return self.notify(f"STATUS={text[:200]}")

    def stopping(self) -> bool:
        return self.notify("STOPPING=1")

    def close(self) -> None:
        with self._lock:
            if self._sock is not None:
                self._sock.close()
                self._sock = None
