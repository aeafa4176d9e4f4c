"""Fake picamera2.encoders.H264Encoder: same constructor and calls as the Pi's V4L2 encoder, but the
frames are encoded with libx264 (headers repeated on every keyframe, like repeat=True on the Pi) and
handed to the outputs as Annex-B bytes with microsecond timestamps relative to the first frame.
In hardware mode libx264 runs in a child process that reads the camera's buffers (as the VPU does)."""

from __future__ import annotations

from fractions import Fraction
from typing import Any

import av
import numpy as np

from picamera2.outputs import Output


class Encoder:
    def __init__(self) -> None:
        self._output: list[Output] = []
        self._running = False
        self.firsttimestamp: int | None = None

    @property
    def running(self) -> bool:
        return self._running

    @property
    def output(self) -> Output | list[Output]:
        return self._output[0] if len(self._output) == 1 else self._output

    @output.setter
    def output(self, value: Output | list[Output]) -> None:
        value = value if isinstance(value, list) else [value]
        if not all(isinstance(o, Output) for o in value):
            raise RuntimeError("Must pass Output")
        self._output = value

    def outputframe(self, frame: bytes, keyframe: bool = True, timestamp: int | None = None,
                    packet: Any = None, audio: bool = False) -> None:
        for out in self._output:
            out.outputframe(frame, keyframe, timestamp, packet, audio)


class H264Encoder(Encoder):
    def __init__(self, bitrate: int | None = None, repeat: bool = True, iperiod: int | None = None,
                 framerate: float | None = None, enable_sps_framerate: bool = False, qp: int | None = None,
                 profile: str | None = None) -> None:
        super().__init__()
        self.bitrate, self.repeat, self.iperiod, self.framerate = bitrate, repeat, iperiod, framerate
        self.profile = profile
        self._ctx: av.CodecContext | None = None
        self._vpu: Any = None  # hardware mode: _hardware.Vpu
        self._force_key = False
        self.frames_encoded = 0

    def force_key_frame(self) -> None:
        self._force_key = True

    def _start_fake(self, size: tuple[int, int], fps: float, ring: Any = None) -> None:
        self.firsttimestamp = None
        if ring is not None:
            from picamera2._hardware import Vpu

            for out in self._output:
                out.start()
            self._vpu = Vpu(ring, fps, self.bitrate, self.iperiod, self.repeat, self.outputframe)
            self._running = True
            return
        ctx = av.CodecContext.create("libx264", "w")
        ctx.width, ctx.height, ctx.pix_fmt = size[0], size[1], "yuv420p"
        ctx.time_base = Fraction(1, 1_000_000)
        ctx.framerate = Fraction(round(fps), 1)
        if self.bitrate:
            ctx.bit_rate = self.bitrate
        ctx.options = {"preset": "ultrafast", "tune": "zerolatency", "g": str(self.iperiod or 60),
                       "x264-params": f"repeat-headers={int(self.repeat)}"}
        self._ctx = ctx
        self.firsttimestamp = None
        self._running = True
        for out in self._output:
            out.start()

    def _encode_fake(self, request: Any, sensor_ns: int) -> None:
        if not self._running or (self._ctx is None and self._vpu is None):
            return
        ts = sensor_ns // 1000
        if self.firsttimestamp is None:
            self.firsttimestamp = ts
        if self._vpu is not None:
            force, self._force_key = self._force_key, False
            self._vpu.encode(request.slot, ts - self.firsttimestamp, force)
            self.frames_encoded += 1
            return
        image = request.make_array("main")
        vf = av.VideoFrame.from_ndarray(np.ascontiguousarray(image[:, :, :3]), format="bgr24")
        vf.pts = ts - self.firsttimestamp
        if self._force_key:
            vf.pict_type = av.video.frame.PictureType.I
            self._force_key = False
        for packet in self._ctx.encode(vf):
            self.outputframe(bytes(packet), packet.is_keyframe, packet.pts)
        self.frames_encoded += 1

    def _stop_fake(self) -> None:
        if self._vpu is not None:
            self._vpu.close()  # every frame sent is delivered first
            self._vpu = None
        if self._ctx is not None:
            for packet in self._ctx.encode(None):
                self.outputframe(bytes(packet), packet.is_keyframe, packet.pts)
        self._ctx = None
        self._running = False
        for out in self._output:
            out.stop()
