"""Hardware segments are stream copies: the MP4 stream is described from the first keyframe's SPS/PPS,
no H.264 encoder is opened in the agent to write a segment (agent/recording/segments_hw.py)."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np

from agent.recording.segments_hw import _SegmentFile

FPS, SIZE = 10, (320, 180)


def annexb_packets(n: int, repeat_headers: bool = True) -> list[bytes]:
    """What a Pi's V4L2 encoder hands over: Annex B H.264, headers on every keyframe (repeat=True)."""
    ctx = av.CodecContext.create("libx264", "w")
    ctx.width, ctx.height, ctx.pix_fmt = *SIZE, "yuv420p"
    ctx.framerate = FPS
    ctx.options = {"preset": "ultrafast", "tune": "zerolatency", "g": "10",
                   "x264-params": f"repeat-headers={int(repeat_headers)}"}
    out: list[bytes] = []
    for i in range(n):
        img = np.full((SIZE[1], SIZE[0], 3), (i * 7) % 255, np.uint8)
        frame = av.VideoFrame.from_ndarray(img, format="bgr24")
        frame.pts = i
        out += [bytes(p) for p in ctx.encode(frame)]
    out += [bytes(p) for p in ctx.encode(None)]
    return out


def test_segment_is_muxed_without_an_encoder(tmp_path: Path) -> None:
    packets = annexb_packets(25)
    seg = _SegmentFile(tmp_path / "seg.mp4", 100.0, SIZE, FPS, True)
    for i, data in enumerate(packets):
        seg.mux(data, 100.0 + i / FPS)
    assert seg.stream is not None and not seg.stream.codec_context.is_open  # no libx264 in the agent
    done = seg.finish(100.0 + len(packets) / FPS)
    assert done.frames == len(packets) == 25
    with av.open(str(done.path)) as c:
        v = c.streams.video[0]
        assert (v.codec_context.name, v.width, v.height) == ("h264", *SIZE)
        assert str(v.time_base) == "1/10240"  # the MP4 timescale add_stream("h264", rate=10) gave
        times = [f.time for f in c.decode(v)]
    assert np.allclose(times, [i / FPS for i in range(25)], atol=1e-3)


def test_first_packet_without_headers_falls_back_to_describing_the_stream(tmp_path: Path) -> None:
    packets = annexb_packets(3, repeat_headers=False)
    seg = _SegmentFile(tmp_path / "seg.mp4", 0.0, SIZE, FPS, True)
    seg.mux(packets[1], 0.0)  # a P-frame: no SPS to read
    assert seg.stream is not None and (seg.stream.width, seg.stream.height) == SIZE
    seg.container.close()
