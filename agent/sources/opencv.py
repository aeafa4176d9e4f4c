"""OpenCV VideoCapture camera source: USB/V4L2 cameras (/dev/videoN or an index) and RTSP IP cameras.

A reader thread owns the capture and hands frames over a small queue, so `read(timeout)` never
hangs on a frozen camera or a dead network stream; the supervisor then reopens the source.
"""

from __future__ import annotations

import logging
import queue
import sys
import threading
from pathlib import Path

import cv2
import numpy as np

from agent.clock import Clock
from agent.config import CameraConfig
from agent.errors import InputError, SourceError
from agent.sources.base import Frame, FrameTimeout, analysis_gray
from agent.threads import supervised

log = logging.getLogger(__name__)


def device_target(device: str) -> int | str:
    """What VideoCapture opens: an index for "0", else the path or URL; InputError if absent."""
    device = device.strip()
    if not device:
        raise InputError("camera.device: no camera device configured for the opencv source")
    if device.isdigit():
        if sys.platform.startswith("linux") and not Path(f"/dev/video{device}").exists():
            raise InputError(f"camera device /dev/video{device} (index {device}) does not exist")
        return int(device)
    if "://" not in device and not Path(device).exists():
        raise InputError(f"camera device {device} does not exist")
    return device


class OpenCVSource:
    """FrameSource over cv2.VideoCapture. Threads: the reader thread calls cap.read(); the caller
    calls open/read/close. They share only the frame queue and the stop event."""

    def __init__(self, cfg: CameraConfig, clock: Clock) -> None:
        self._cfg = cfg
        self._clock = clock
        self.fps = cfg.fps
        self.size = (cfg.width, cfg.height)
        self._target = device_target(cfg.device)
        self._queue: queue.Queue[Frame | Exception] = queue.Queue(maxsize=2)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def open(self) -> None:
        self.close()
        is_url = isinstance(self._target, str) and "://" in self._target
        cap = cv2.VideoCapture(self._target, cv2.CAP_FFMPEG if is_url else cv2.CAP_ANY)
        if not cap.isOpened():
            cap.release()
            raise SourceError(f"camera {self._cfg.device}: cannot open")
        if not is_url:
            cap.set(cv2.CAP_PROP_FRAME_WIDTH, self._cfg.width)
            cap.set(cv2.CAP_PROP_FRAME_HEIGHT, self._cfg.height)
            cap.set(cv2.CAP_PROP_FPS, self._cfg.fps)
        fps = cap.get(cv2.CAP_PROP_FPS)
        self.fps = fps if 0 < fps <= 120 else self._cfg.fps
        w, h = int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)), int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT))
        if w > 0 and h > 0:
            self.size = (w, h)
        self._stop = threading.Event()
        self._queue = queue.Queue(maxsize=2)
        stop, frames = self._stop, self._queue
        self._thread = supervised("opencv-reader", lambda: self._reader(cap, stop, frames))

    def _reader(self, cap: cv2.VideoCapture, stop: threading.Event, out: queue.Queue) -> None:
        index = 0
        try:
            while not stop.is_set():
                ok, image = cap.read()
                if not ok or image is None:
                    out.put(SourceError(f"camera {self._cfg.device}: stream ended or failed"))
                    return
                t, wall = self._clock.monotonic(), self._clock.time()
                if image.ndim == 2:
                    image = cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
                gray = analysis_gray(image, self._cfg.analysis_width, self._cfg.analysis_height)
                frame = Frame(index, t, wall, np.ascontiguousarray(image), gray)
                index += 1
                try:
                    out.put_nowait(frame)
                except queue.Full:  # the consumer is behind: drop the oldest frame
                    try:
                        out.get_nowait()
                    except queue.Empty:
                        pass
                    out.put_nowait(frame)
        finally:
            cap.release()

    def read(self, timeout: float = 1.0) -> Frame | None:
        if self._thread is None:
            raise SourceError(f"camera {self._cfg.device}: not open")
        try:
            item = self._queue.get(timeout=timeout)
        except queue.Empty:
            raise FrameTimeout(f"camera {self._cfg.device}: no frame in {timeout:.1f} s") from None
        if isinstance(item, Exception):
            raise item
        return item

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=2.0)  # a capture stuck in read() is abandoned (daemon)
            if self._thread.is_alive():
                log.warning("camera %s: reader thread did not stop; abandoned", self._cfg.device)
        self._thread = None
