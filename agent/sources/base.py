"""Camera sources, first stage of the flow: one small interface yielding timestamped frames.

Each frame carries a full-resolution BGR image (for recording and snapshots) and a small
grayscale frame (for the motion detector); `open_source` picks the backend from the config.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import cv2
import numpy as np

from agent.clock import Clock
from agent.config import CameraConfig
from agent.errors import SourceError


@dataclass(frozen=True)
class Frame:
    index: int  # 0, 1, 2 ... since the source was opened (restarts at 0 on reopen)
    t: float  # monotonic seconds at capture
    wall: float  # UTC epoch seconds at capture
    image: np.ndarray  # full-resolution BGR, uint8 (h, w, 3)
    gray: np.ndarray  # analysis frame, uint8 (analysis_height, analysis_width)


class FrameTimeout(SourceError):
    """No frame arrived within the read timeout; the caller may simply read again."""


class FrameSource(Protocol):
    """A camera backend. `read` raises FrameTimeout if no frame came in time, SourceError if the
    source failed (reopen it), and returns None only at the end of a non-looping file."""

    fps: float
    size: tuple[int, int]  # (width, height) of Frame.image

    def open(self) -> None: ...
    def read(self, timeout: float) -> Frame | None: ...
    def close(self) -> None: ...


def analysis_gray(image: np.ndarray, width: int, height: int) -> np.ndarray:
    """Small grayscale frame for the detector from a BGR (or already grey) image."""
    small = cv2.resize(image, (width, height), interpolation=cv2.INTER_AREA)
    return small if small.ndim == 2 else cv2.cvtColor(small, cv2.COLOR_BGR2GRAY)


def make_source(cfg: CameraConfig, clock: Clock, full_frames: bool = True) -> FrameSource:
    """The backend for cfg.source, not yet opened. `full_frames=False`: a source whose recorder
    encodes the full frames itself (picamera2) may leave Frame.image empty."""
    if cfg.source == "file":
        from agent.sources.file import FileSource

        return FileSource(cfg, clock)
    if cfg.source == "opencv":
        from agent.sources.opencv import OpenCVSource

        return OpenCVSource(cfg, clock)
    from agent.sources.picamera2 import Picamera2Source

    return Picamera2Source(cfg, clock, full_frames=full_frames)


def check_device(cfg: CameraConfig) -> None:
    """Fail fast, before anything starts: InputError (one line) if the configured camera device or
    video file does not exist or the camera stack is missing. Opens nothing."""
    if cfg.source == "file":
        from agent.sources.file import probe_video

        probe_video(Path(cfg.device))
    elif cfg.source == "opencv":
        from agent.sources.opencv import device_target

        device_target(cfg.device)
    else:
        from agent.sources.picamera2 import check_camera

        check_camera(cfg)


def open_source(cfg: CameraConfig, clock: Clock) -> FrameSource:
    """Create and open the configured source; a missing device or file raises InputError."""
    source = make_source(cfg, clock)
    source.open()
    return source
