"""Child processes of the fake picamera2's hardware mode: the camera sensor+ISP and the VPU encoder.

`sensor SCENE FORMAT RING MAIN LORES COUNT`: on each slot number read from stdin, write the scene's
next frame (looping) into that ring slot, then answer one byte. `encoder RING MAIN LORES COUNT FPS
BITRATE IPERIOD REPEAT`: per (slot, pts, force) read, take the slot's main frame, answer "slot read",
encode with libx264 and send the packets back (formats in _hardware.py).
"""

from __future__ import annotations

import mmap
import os
import struct
import sys
from fractions import Fraction

import av
import cv2
import numpy as np

SLOT_MSG = struct.Struct("<i")
ENC_IN = struct.Struct("<iqB")
ENC_OUT = struct.Struct("<BBqI")


def shape(text: str) -> tuple[int, ...] | None:
    return None if text == "-" else tuple(int(v) for v in text.split("x"))


def open_ring(path: str, main: str, lores: str, count: str):
    main_shape, lores_shape = shape(main), shape(lores)
    main_bytes = int(np.prod(main_shape))
    slot_bytes = main_bytes + (int(np.prod(lores_shape)) if lores_shape else 0)
    fd = os.open(path, os.O_RDWR)
    mm = mmap.mmap(fd, slot_bytes * int(count))
    os.close(fd)

    def arrays(slot: int) -> tuple[np.ndarray, np.ndarray | None]:
        base = slot * slot_bytes
        m = np.ndarray(main_shape, np.uint8, buffer=mm, offset=base)
        lo = (np.ndarray(lores_shape, np.uint8, buffer=mm, offset=base + main_bytes)
              if lores_shape else None)
        return m, lo

    return arrays, main_shape, lores_shape


def read_exact(stream, n: int) -> bytes | None:
    data = stream.read(n)
    return data if data is not None and len(data) == n else None


def sensor(scene: str, fmt: str, ring: str, main: str, lores: str, count: str) -> None:
    arrays, (h, w, c), lores_shape = open_ring(ring, main, lores, count)
    container = av.open(scene)

    def frames():
        while True:
            container.seek(0)
            got = False
            for vf in container.decode(video=0):
                got = True
                yield vf
            if not got:
                raise SystemExit("sensor: scene has no frames")

    source = frames()

    def render():
        big = cv2.resize(next(source).to_ndarray(format="bgr24"), (w, h))
        lo = None
        if lores_shape is not None:
            lw, lh = lores_shape[1], lores_shape[0] * 2 // 3
            lo = cv2.cvtColor(cv2.resize(big, (lw, lh)), cv2.COLOR_BGR2YUV_I420)
        return (big if c == 3 else cv2.cvtColor(big, cv2.COLOR_BGR2BGRA)), lo

    ready = render()
    stdin, stdout = sys.stdin.buffer, sys.stdout.buffer
    while (msg := read_exact(stdin, SLOT_MSG.size)) is not None:
        slot = SLOT_MSG.unpack(msg)[0]
        if slot < 0:
            break
        m, lo = arrays(slot)
        m[...] = ready[0]
        if lo is not None:
            lo[...] = ready[1]
        stdout.write(b"\x01")
        stdout.flush()
        ready = render()  # the next frame, while the app works on this one


def encoder(ring: str, main: str, lores: str, count: str, fps: str, bitrate: str, iperiod: str,
            repeat: str) -> None:
    arrays, (h, w, _), _ = open_ring(ring, main, lores, count)
    ctx = av.CodecContext.create("libx264", "w")
    ctx.width, ctx.height, ctx.pix_fmt = w, h, "yuv420p"
    ctx.time_base = Fraction(1, 1_000_000)
    ctx.framerate = Fraction(round(float(fps)), 1)
    if int(bitrate):
        ctx.bit_rate = int(bitrate)
    ctx.options = {"preset": "ultrafast", "tune": "zerolatency", "g": iperiod,
                   "x264-params": f"repeat-headers={repeat}"}
    stdin, stdout = sys.stdin.buffer, sys.stdout.buffer

    def send(packets) -> None:
        for p in packets:
            data = bytes(p)
            stdout.write(ENC_OUT.pack(1, int(p.is_keyframe), int(p.pts), len(data)) + data)
        stdout.flush()

    while (msg := read_exact(stdin, ENC_IN.size)) is not None:
        slot, pts, force = ENC_IN.unpack(msg)
        if slot < 0:
            break
        image = np.ascontiguousarray(arrays(slot)[0][:, :, :3])  # the VPU reads the buffer
        stdout.write(ENC_OUT.pack(0, 0, slot, 0))
        stdout.flush()
        vf = av.VideoFrame.from_ndarray(image, format="bgr24")
        vf.pts = pts
        if force:
            vf.pict_type = av.video.frame.PictureType.I
        send(ctx.encode(vf))
    send(ctx.encode(None))
    stdout.write(ENC_OUT.pack(2, 0, 0, 0))
    stdout.flush()


if __name__ == "__main__":
    {"sensor": sensor, "encoder": encoder}[sys.argv[1]](*sys.argv[2:])
