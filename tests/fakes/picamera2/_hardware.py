"""Hardware mode of the fake picamera2 (PICAMERA2_FAKE_HARDWARE=1): the memory placement of a Pi.

On a Pi the ISP writes frames into dmabufs the app maps, and the V4L2 M2M encoder (the VPU) reads
them and hands the bitstream back: neither decoder nor encoder lives in the app's process. Here a
"sensor" child process writes the filmed clip's frames into a shared-memory ring the app maps, and
an "encoder" child reads the main stream from that ring and sends H.264 back (see _hw_child.py).
"""

from __future__ import annotations

import mmap
import os
import struct
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

CHILD = Path(__file__).with_name("_hw_child.py")
SLOT_MSG = struct.Struct("<i")
ENC_IN = struct.Struct("<iqB")  # slot (-1: flush and end), pts in microseconds, force keyframe
ENC_OUT = struct.Struct("<BBqI")  # kind (0 slot read, 1 packet, 2 end), keyframe, pts or slot, length


def _read_exact(stream: Any, n: int) -> bytes:
    data = stream.read(n)
    if data is None or len(data) != n:
        raise EOFError("hardware child ended")
    return data


class Ring:
    """`count` frame buffers (main then lores) in one shared-memory file, mapped by this process as
    picamera2 maps the camera's dmabufs; pages count in RSS only where this process touches them."""

    def __init__(self, main_shape: tuple[int, ...], lores_shape: tuple[int, ...] | None, count: int) -> None:
        self.main_shape, self.lores_shape, self.count = main_shape, lores_shape, count
        self.main_bytes = int(np.prod(main_shape))
        self.slot_bytes = self.main_bytes + (int(np.prod(lores_shape)) if lores_shape else 0)
        shm = "/dev/shm" if os.path.isdir("/dev/shm") else None
        fd, name = tempfile.mkstemp(prefix="fake-picamera2-", dir=shm)
        self.path = Path(name)
        os.ftruncate(fd, self.slot_bytes * count)
        self.map = mmap.mmap(fd, self.slot_bytes * count)
        os.close(fd)
        self.busy: set[int] = set()  # slots the encoder has not read yet
        self.cond = threading.Condition()

    def spec(self) -> list[str]:
        lores = "x".join(map(str, self.lores_shape)) if self.lores_shape else "-"
        return [str(self.path), "x".join(map(str, self.main_shape)), lores, str(self.count)]

    def arrays(self, slot: int) -> dict[str, np.ndarray]:
        base = slot * self.slot_bytes
        out = {"main": np.ndarray(self.main_shape, np.uint8, buffer=self.map, offset=base)}
        if self.lores_shape:
            out["lores"] = np.ndarray(self.lores_shape, np.uint8, buffer=self.map,
                                      offset=base + self.main_bytes)
        return out

    def wait_free(self, slot: int, timeout: float = 10.0) -> None:
        with self.cond:
            self.cond.wait_for(lambda: slot not in self.busy, timeout)

    def mark(self, slot: int, busy: bool) -> None:
        with self.cond:
            (self.busy.add if busy else self.busy.discard)(slot)
            self.cond.notify_all()

    def close(self) -> None:
        self.path.unlink(missing_ok=True)  # the mapping stays valid while arrays still view it


def _spawn(*args: str) -> subprocess.Popen:
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1"}
    return subprocess.Popen([sys.executable, str(CHILD), *args], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, env=env)


class Sensor:
    """The camera: on request, the child writes the scene's next frame into a ring slot; frames
    come at the configured rate (a real sensor's pace)."""

    def __init__(self, scene: Path, ring: Ring, fps: float, main_format: str) -> None:
        self.ring, self.period = ring, 1.0 / fps
        self.proc = _spawn("sensor", str(scene), main_format, *ring.spec())
        self.next_t: float | None = None

    def capture(self, n: int) -> int:
        now = time.monotonic()
        self.next_t = now if self.next_t is None else max(self.next_t + self.period, now - self.period)
        if self.next_t > now:
            time.sleep(self.next_t - now)  # the sensor's frame interval
        slot = n % self.ring.count
        self.ring.wait_free(slot)
        self.proc.stdin.write(SLOT_MSG.pack(slot))
        self.proc.stdin.flush()
        _read_exact(self.proc.stdout, 1)
        return slot

    def close(self) -> None:
        try:
            self.proc.stdin.write(SLOT_MSG.pack(-1))
            self.proc.stdin.close()
        except OSError:
            pass
        _reap(self.proc)


def _reap(proc: subprocess.Popen) -> None:
    """Wait for a child told to stop (killed if it has not in 10 s) and close its pipe."""
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    proc.stdout.close()


class Vpu:
    """The encoder: the child reads a slot's main frame from the ring and returns H.264 packets,
    which a thread here hands to `deliver(data, keyframe, pts)` (picamera2's encoder thread)."""

    def __init__(self, ring: Ring, fps: float, bitrate: int | None, iperiod: int | None, repeat: bool,
                 deliver: Callable[[bytes, bool, int], None]) -> None:
        self.ring, self.deliver = ring, deliver
        self.proc = _spawn("encoder", *ring.spec(), str(fps), str(bitrate or 0), str(iperiod or 60),
                           str(int(repeat)))
        self.lock = threading.Lock()
        self.thread = threading.Thread(target=self._receive, name="fake-vpu", daemon=True)
        self.thread.start()

    def encode(self, slot: int, pts: int, force_key: bool) -> None:
        self.ring.mark(slot, True)
        with self.lock:
            self.proc.stdin.write(ENC_IN.pack(slot, pts, int(force_key)))
            self.proc.stdin.flush()

    def _receive(self) -> None:
        out = self.proc.stdout
        try:
            while True:
                kind, key, pts, length = ENC_OUT.unpack(_read_exact(out, ENC_OUT.size))
                if kind == 0:
                    self.ring.mark(pts, False)
                elif kind == 1:
                    self.deliver(_read_exact(out, length), bool(key), pts)
                else:
                    return
        except EOFError:
            return
        finally:
            with self.ring.cond:
                self.ring.busy.clear()
                self.ring.cond.notify_all()

    def close(self) -> None:
        """Flush: every frame sent is encoded and delivered before this returns."""
        try:
            with self.lock:
                self.proc.stdin.write(ENC_IN.pack(-1, 0, 0))
                self.proc.stdin.close()
        except OSError:
            pass
        self.thread.join(30)
        _reap(self.proc)
