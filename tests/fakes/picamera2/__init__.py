"""Fake picamera2 (0.3.x API subset used by agent.sources.picamera2 and agent.recording.segments_hw).

A frame is produced each time the app asks for one (capture_request + wait): deterministic, no wall
sleeps. Like the real library, each frame first goes through `pre_callback(request)`, then to the
running encoder, then to the app. Frames come from a real clip (`Picamera2.scene`).

Hardware mode (`Picamera2.hardware`, set by PICAMERA2_FAKE_HARDWARE=1; the scene may come from
PICAMERA2_FAKE_SCENE): the same API with a Pi's memory placement and pace (see _hardware.py).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import av
import cv2
import numpy as np

from picamera2 import encoders, outputs  # noqa: F401  (the real package has these submodules)


class _Job:
    def __init__(self, result: Any) -> None:
        self._result = result

    def get_result(self, timeout: float | None = None) -> Any:
        if isinstance(self._result, BaseException):
            raise self._result
        return self._result


class CompletedRequest:
    def __init__(self, arrays: dict[str, np.ndarray], metadata: dict[str, Any],
                 slot: int | None = None) -> None:
        self._arrays = arrays
        self._metadata = metadata
        self.slot = slot  # hardware mode: the ring buffer holding the frame
        self.released = False

    def make_array(self, name: str) -> np.ndarray:
        assert not self.released, "request used after release()"
        return self._arrays[name].copy()

    def get_metadata(self) -> dict[str, Any]:
        return dict(self._metadata)

    def release(self) -> None:
        self.released = True


class MappedArray:
    """`with MappedArray(request, "main") as m: m.array[...] = ...` writes into the frame in place."""

    def __init__(self, request: CompletedRequest, stream: str, write: bool = True) -> None:
        self._request, self._stream = request, stream

    def __enter__(self) -> MappedArray:
        self.array = self._request._arrays[self._stream]
        return self

    def __exit__(self, *exc: object) -> None:
        pass


class Picamera2:
    scene: Path | None = Path(os.environ["PICAMERA2_FAKE_SCENE"]) if os.environ.get("PICAMERA2_FAKE_SCENE") \
        else None  # the clip the fake camera films
    hardware: bool = os.environ.get("PICAMERA2_FAKE_HARDWARE") == "1"  # sensor and VPU out of process
    cameras: list[dict[str, Any]] = [{"Model": "imx708", "Location": 2, "Id": "/base/soc/i2c0mux/imx708"}]
    stall_after: int | None = None  # stop delivering frames after this many (a hung camera stack)
    instances: list[Picamera2] = []

    @staticmethod
    def global_camera_info() -> list[dict[str, Any]]:
        return list(Picamera2.cameras)

    def __init__(self, camera_num: int = 0) -> None:
        if camera_num >= len(Picamera2.cameras):
            raise IndexError("list index out of range")  # what the real constructor raises
        self.camera_num = camera_num
        self.pre_callback = None
        self.camera_config: dict[str, Any] | None = None
        self.started = False
        self.closed = False
        self.encoder: encoders.H264Encoder | None = None
        self._frames = None
        self._n = 0
        self._ring: Any = None  # hardware mode: _hardware.Ring and Sensor
        self._sensor: Any = None
        Picamera2.instances.append(self)

    def create_video_configuration(self, main: dict | None = None, lores: dict | None = None,
                                   raw: dict | None = None, transform: Any = None, colour_space: Any = None,
                                   buffer_count: int = 6, controls: dict | None = None,
                                   display: str | None = "main", encode: str | None = "main",
                                   queue: bool = True, sensor: dict | None = None,
                                   use_case: str = "video") -> dict[str, Any]:
        main = {"format": "XBGR8888", "size": (1280, 720), **(main or {})}
        if lores is not None:
            lores = {"format": "YUV420", "size": (320, 240), **lores}
        return {"use_case": use_case, "main": main, "lores": lores, "controls": dict(controls or {}),
                "encode": encode, "buffer_count": buffer_count}

    def configure(self, camera_config: dict[str, Any]) -> None:
        assert not self.started, "configure() while running"
        self.camera_config = camera_config

    def start(self, config: dict | None = None, show_preview: bool = False) -> None:
        assert self.camera_config is not None, "Camera has not been configured"
        self.started = True
        if Picamera2.hardware:
            if self._sensor is None and Picamera2.scene is not None:
                from picamera2._hardware import Sensor

                self._sensor = Sensor(Picamera2.scene, self._hardware_ring(), self._fps(),
                                      self.camera_config["main"]["format"])
        elif Picamera2.scene is not None:
            self._frames = av.open(str(Picamera2.scene)).decode(video=0)

    def _fps(self) -> float:
        return float(self.camera_config["controls"].get("FrameRate", 30.0))

    def _hardware_ring(self) -> Any:
        """The camera's buffers (hardware mode), made at the first start or start_encoder."""
        if self._ring is None:
            from picamera2._hardware import Ring

            cfg = self.camera_config
            w, h = cfg["main"]["size"]
            channels = 3 if cfg["main"]["format"] in ("RGB888", "BGR888") else 4
            lores = None
            if cfg["lores"] is not None:
                lw, lh = cfg["lores"]["size"]
                lores = (lh * 3 // 2, lw)
            self._ring = Ring((h, w, channels), lores, cfg["buffer_count"])
        return self._ring

    def start_encoder(self, encoder: encoders.H264Encoder, output: Any = None, pts: Any = None,
                      quality: Any = None, name: str | None = None) -> None:
        if output is not None:
            encoder.output = output
        size = self.camera_config["main"]["size"]
        encoder._start_fake(size, self._fps(), self._hardware_ring() if Picamera2.hardware else None)
        self.encoder = encoder

    def stop_encoder(self, encoders_: Any = None) -> None:
        if self.encoder is not None:
            self.encoder._stop_fake()
            self.encoder = None

    def start_recording(self, encoder: encoders.H264Encoder, output: Any, pts: Any = None,
                        config: dict | None = None, quality: Any = None, name: str | None = None) -> None:
        if config is not None:
            self.configure(config)
        self.start_encoder(encoder, output, pts=pts, quality=quality, name=name)
        self.start()

    def stop_recording(self) -> None:
        self.stop()
        self.stop_encoder()

    def stop(self) -> None:
        self.started = False

    def close(self) -> None:
        if self.started:
            self.stop()
        if self._sensor is not None:
            self._sensor.close()
            self._sensor = None
        if self._ring is not None:
            self._ring.close()
        self.closed = True

    # --- frames ---

    def _next_request(self) -> CompletedRequest:
        if not self.started:
            raise RuntimeError("Camera is not running")
        if Picamera2.stall_after is not None and self._n >= Picamera2.stall_after:
            raise TimeoutError()
        cfg = self.camera_config
        slot = None
        if self._sensor is not None:  # the sensor child fills a mapped buffer
            slot = self._sensor.capture(self._n)
            arrays = self._ring.arrays(slot)
        else:
            vf = next(self._frames, None) if self._frames is not None else None
            if vf is None:  # loop the scene
                self._frames = av.open(str(Picamera2.scene)).decode(video=0)
                vf = next(self._frames)
            w, h = cfg["main"]["size"]
            main = cv2.resize(vf.to_ndarray(format="bgr24"), (w, h))
            arrays = {"main": main if cfg["main"]["format"] in ("RGB888", "BGR888")
                      else cv2.cvtColor(main, cv2.COLOR_BGR2BGRA)}
            if cfg["lores"] is not None:
                lw, lh = cfg["lores"]["size"]
                arrays["lores"] = cv2.cvtColor(cv2.resize(main, (lw, lh)), cv2.COLOR_BGR2YUV_I420)
        fps = self._fps()
        metadata = {"SensorTimestamp": int(1_000_000_000 + self._n * 1e9 / fps),
                    "FrameDuration": int(1e6 / fps)}
        self._n += 1
        request = CompletedRequest(arrays, metadata, slot)
        if self.pre_callback is not None:
            self.pre_callback(request)
        if self.encoder is not None:
            self.encoder._encode_fake(request, metadata["SensorTimestamp"])
        return request

    def capture_request(self, wait: bool | None = None, signal_function: Any = None, flush: Any = None):
        try:
            result: Any = self._next_request()
        except (TimeoutError, RuntimeError) as err:
            result = err
        job = _Job(result)
        return job if wait is False else job.get_result()

    def wait(self, job: _Job, timeout: float | None = None) -> Any:
        return job.get_result(timeout)

    def capture_array(self, name: str = "main", wait: Any = None, signal_function: Any = None) -> np.ndarray:
        request = self.capture_request()
        try:
            return request.make_array(name)
        finally:
            request.release()
