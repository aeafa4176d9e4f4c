"""Raspberry Pi CSI camera source via picamera2 (imported lazily: only on a Pi, from apt).

The main stream (full resolution) feeds the hardware H.264 encoder when a recorder attaches one
(agent.recording.segments_hw), and is copied into Frame.image unless `full_frames` is off; the
lores YUV420 stream's Y plane is Frame.gray.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

import numpy as np

from agent.clock import Clock
from agent.config import CameraConfig
from agent.errors import InputError, SourceError
from agent.sources.base import Frame, FrameTimeout

log = logging.getLogger(__name__)

NO_IMAGE = np.zeros((0, 0, 3), np.uint8)  # Frame.image when the app does not need the main stream


def _import_picamera2() -> Any:
    try:
        import picamera2
    except ImportError as err:
        raise InputError(
            f"camera.source = picamera2 but the picamera2 module cannot be imported ({err}); on a Pi "
            "install python3-picamera2 and create the venv with --system-site-packages"
        ) from None
    return picamera2


def camera_number(cfg: CameraConfig) -> int:
    return int(cfg.device) if cfg.device.isdigit() else 0


def check_camera(cfg: CameraConfig) -> None:
    """InputError if picamera2 is missing or does not see the configured camera."""
    pc2 = _import_picamera2()
    num, found = camera_number(cfg), len(pc2.Picamera2.global_camera_info())
    if num >= found:
        raise InputError(f"camera {num} not found: picamera2 sees {found} camera(s)")


class Picamera2Source:
    """FrameSource over a Picamera2 camera. A recorder attaches `(encoder, output)` and a
    `pre_callback` (privacy masks) with attach(), before or after open() and from any thread; they
    are re-attached on every reopen. open/close/attach share one lock; read() runs unlocked.

    With `full_frames=False` (the running agent) and a recorder attached, frames carry no image:
    the encoder reads the main stream from the camera's buffers itself, the detector needs only the
    lores stream and snapshots come from the segments, so the main stream is never copied into the
    process (2.8 MB per 720p frame, and its buffers' pages are never touched)."""

    def __init__(self, cfg: CameraConfig, clock: Clock, camera_num: int = 0,
                 full_frames: bool = True) -> None:
        self._cfg = cfg
        self._clock = clock
        self._camera_num = camera_number(cfg) if cfg.device else camera_num
        self.fps = cfg.fps
        self.size = (cfg.width, cfg.height)
        self.camera: Any = None
        self.recording: tuple[Any, Any] | None = None  # (H264Encoder, Output) from the recorder
        self.pre_callback: Callable[[Any], None] | None = None
        self._index = 0
        self._full_frames = full_frames
        self._checked = False
        self._lock = threading.Lock()

    def attach(self, encoder: Any, output: Any, pre_callback: Callable[[Any], None] | None) -> None:
        """Record the main stream with `encoder` into `output`; starts at once if already open."""
        with self._lock:
            self.recording, self.pre_callback = (encoder, output), pre_callback
            if self.camera is not None:
                self.camera.pre_callback = pre_callback
                self.camera.start_encoder(encoder, output)

    def open(self) -> None:
        self.close()
        with self._lock:
            self._open()

    def _open(self) -> None:
        pc2 = _import_picamera2()
        if not self._checked:
            found = len(pc2.Picamera2.global_camera_info())
            if self._camera_num >= found:
                raise InputError(f"camera {self._camera_num} not found: picamera2 sees {found} camera(s)")
            self._checked = True  # later a vanished camera is a failure to retry, not a config error
        cfg = self._cfg
        try:
            cam = pc2.Picamera2(self._camera_num)
            config = cam.create_video_configuration(
                main={"size": (cfg.width, cfg.height), "format": "RGB888"},
                lores={"size": (cfg.analysis_width, cfg.analysis_height), "format": "YUV420"},
                controls={"FrameRate": cfg.fps},
            )
            cam.configure(config)
            cam.pre_callback = self.pre_callback
            if self.recording is not None:
                encoder, output = self.recording
                cam.start_recording(encoder, output)
            else:
                cam.start()
        except (RuntimeError, OSError, IndexError) as err:
            raise SourceError(f"picamera2 camera {self._camera_num}: cannot start: {err}") from None
        self.camera, self._index = cam, 0

    def read(self, timeout: float = 1.0) -> Frame | None:
        cam = self.camera
        if cam is None:
            raise SourceError("picamera2: not open")
        try:
            request = cam.wait(cam.capture_request(wait=False), timeout=timeout)
        except TimeoutError:
            raise FrameTimeout(f"picamera2: no frame in {timeout:.1f} s") from None
        except RuntimeError as err:
            raise SourceError(f"picamera2: capture failed: {err}") from None
        try:
            t, wall = self._clock.monotonic(), self._clock.time()
            image = request.make_array("main") if self._full_frames or self.recording is None else None
            yuv = request.make_array("lores")
        finally:
            request.release()
        gray = np.ascontiguousarray(yuv[: self._cfg.analysis_height, : self._cfg.analysis_width])
        bgr = NO_IMAGE if image is None else np.ascontiguousarray(image[:, :, :3])
        frame = Frame(self._index, t, wall, bgr, gray)
        self._index += 1
        return frame

    def close(self) -> None:
        with self._lock:
            cam, self.camera = self.camera, None
        if cam is None:
            return
        try:
            if self.recording is not None:
                cam.stop_recording()
            else:
                cam.stop()
        except Exception as err:  # a wedged camera stack must not stop the reopen
            log.warning("picamera2: stop failed: %s", err)
        finally:
            cam.close()
