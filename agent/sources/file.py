"""Video-file camera source (demo, tests, replay, `cctv-agent detect`): decoded with PyAV.

Frame times are the open time plus the frame's offset in the video, so a file read flat out
("fast") still yields real video-time spacing and recordings line up with the content.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np

from agent.clock import Clock
from agent.config import CameraConfig
from agent.errors import InputError
from agent.sources.base import Frame

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class VideoInfo:
    fps: float
    size: tuple[int, int]  # (width, height)
    frames: int  # frame count declared by the container, 0 if unknown


def probe_video(path: Path) -> VideoInfo:
    """What a video file's header declares; InputError if it is missing or not a video."""
    if not path.is_file():
        raise InputError(f"{path}: video file not found")
    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise InputError(f"{path}: no video stream")
            stream = container.streams.video[0]
            rate = stream.average_rate or stream.guessed_rate
            size = (stream.codec_context.width, stream.codec_context.height)
            return VideoInfo(float(rate) if rate else 25.0, size, int(stream.frames or 0))
    except av.error.FFmpegError as err:
        raise InputError(f"{path}: not a readable video: {err.strerror or err}") from None


class FileSource:
    """FrameSource over a video file; loops if cfg.loop; paced "realtime" via the clock or "fast"."""

    def __init__(self, cfg: CameraConfig, clock: Clock, path: Path | str | None = None) -> None:
        self._cfg = cfg
        self._clock = clock
        self._path = Path(path if path is not None else cfg.device)
        self.fps, self.size = 25.0, (0, 0)
        self._container: av.container.InputContainer | None = None
        self._frames: Iterator[av.VideoFrame] | None = None
        self._open_t = self._open_wall = 0.0
        self._index = 0
        self._pass_base = 0.0  # video seconds of earlier loop passes
        self._offset = -1.0  # video seconds of the last frame returned
        self._first_time: float | None = None
        self._pass_index = 0

    def open(self) -> None:
        info = probe_video(self._path)
        self.fps, self.size = info.fps, info.size
        self._start_pass()
        self._open_t, self._open_wall = self._clock.monotonic(), self._clock.time()
        self._index, self._pass_base, self._offset = 0, 0.0, -1.0

    def _start_pass(self) -> None:
        self.close()
        self._container = av.open(str(self._path))
        stream = self._container.streams.video[0]
        # Played like a camera (realtime): slice threads only (FFmpeg's default), since frame threads
        # each hold decoded frames (about 7 MB more at 720p) for no gain at camera frame rates.
        # Read flat out (`detect`, tests): frame threads, for speed.
        stream.thread_type = "SLICE" if self._cfg.pace == "realtime" else "AUTO"
        # AVI carries no reliable presentation times (B-frames come out of order): count frames.
        self._use_pts = "avi" not in self._container.format.name
        self._frames = self._container.decode(stream)
        self._first_time, self._pass_index = None, 0

    def _next_video_frame(self) -> av.VideoFrame | None:
        assert self._frames is not None
        try:
            return next(self._frames)
        except StopIteration:
            return None
        except av.error.FFmpegError as err:
            raise InputError(f"{self._path}: decoding failed after frame {self._index}: {err}") from None

    def _video_offset(self, vf: av.VideoFrame) -> float:
        if self._use_pts and vf.time is not None:
            if self._first_time is None:
                self._first_time = vf.time
            offset = self._pass_base + vf.time - self._first_time
        else:
            offset = self._pass_base + self._pass_index / self.fps
        self._pass_index += 1
        return max(offset, self._offset + 1e-3)  # strictly increasing

    def read(self, timeout: float = 1.0) -> Frame | None:
        if self._frames is None:
            raise InputError(f"{self._path}: source not open")
        vf = self._next_video_frame()
        if vf is None:
            if not self._cfg.loop or self._index == 0:
                return None
            self._pass_base = self._offset + 1.0 / self.fps
            self._start_pass()
            vf = self._next_video_frame()
            if vf is None:
                return None
        self._offset = self._video_offset(vf)
        t = self._open_t + self._offset
        if self._cfg.pace == "realtime":
            wait = t - self._clock.monotonic()
            if wait > 0:
                self._clock.sleep(wait)
        image = vf.to_ndarray(format="bgr24")
        gray = vf.reformat(
            width=self._cfg.analysis_width, height=self._cfg.analysis_height, format="gray"
        ).to_ndarray()
        frame = Frame(self._index, t, self._open_wall + self._offset, image, np.ascontiguousarray(gray))
        self._index += 1
        return frame

    def close(self) -> None:
        if self._container is not None:
            self._container.close()
        self._container, self._frames = None, None
