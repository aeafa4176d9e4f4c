"""Benchmark: cost of continuous recording per 720p frame, the project's SegmentRecorder beside two
baselines in one run; writes benchmarks/results/recording.json.

- segment_recorder: agent.recording.segments.SegmentRecorder (libx264 veryfast, zerolatency, 2 s GOP, 10 s
  segments with fsync + rename + SHA-256 + index row).
- x264_ultrafast: the same H.264 encode with preset ultrafast into one MP4 (no segmenting).
- opencv_mp4v: OpenCV VideoWriter with MPEG-4 part 2 (what OpenCV can write; browsers cannot play it).
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from report import write_results  # noqa: E402

from agent.clock import ManualClock  # noqa: E402
from agent.config import parse_config  # noqa: E402
from agent.db import connect, db_path  # noqa: E402
from agent.detection.masks import PrivacyMasker  # noqa: E402
from agent.recording.segments import SegmentIndex, SegmentRecorder  # noqa: E402
from agent.sources import Frame  # noqa: E402

CLIP = ROOT / ".." / "shared" / "data" / "opencv_vtest_480x360.avi"
N = 300  # 30 s at 10 fps
SIZE = (1280, 720)


def load_frames() -> list[np.ndarray]:
    with av.open(str(CLIP)) as c:
        out = []
        for vf in c.decode(video=0):
            out.append(cv2.resize(vf.to_ndarray(format="bgr24"), SIZE))
            if len(out) == N:
                return out
    return out


def bench_recorder(images: list[np.ndarray], tmp: Path) -> tuple[list[float], int]:
    cfg = parse_config({"unit": {"id": "bench", "data_dir": str(tmp)}}, env={})
    clock = ManualClock()
    rec = SegmentRecorder(cfg, clock, SegmentIndex(connect(db_path(tmp))), PrivacyMasker([]))
    times = []
    for i, img in enumerate(images):
        clock.advance(0.1)
        frame = Frame(i, clock.monotonic(), clock.time(), img, img[::3, ::4, 0])
        t0 = time.perf_counter()
        rec.write(frame)
        times.append(time.perf_counter() - t0)
    t0 = time.perf_counter()
    rec.close()
    times[-1] += time.perf_counter() - t0
    return times, sorted((tmp / "recordings").rglob("*.mp4"))


def bench_ultrafast(images: list[np.ndarray], tmp: Path) -> tuple[list[float], int]:
    out = tmp / "ultrafast.mp4"
    with av.open(str(out), "w") as c:
        s = c.add_stream("libx264", rate=10, options={"preset": "ultrafast", "g": "20"})
        s.width, s.height, s.pix_fmt, s.bit_rate = SIZE[0], SIZE[1], "yuv420p", 1_500_000
        times = []
        for i, img in enumerate(images):
            t0 = time.perf_counter()
            vf = av.VideoFrame.from_ndarray(img, format="bgr24")
            vf.pts, vf.time_base = i, Fraction(1, 10)
            c.mux(s.encode(vf))
            times.append(time.perf_counter() - t0)
        c.mux(s.encode(None))
    return times, [out]


def bench_mp4v(images: list[np.ndarray], tmp: Path) -> tuple[list[float], int]:
    out = tmp / "mp4v.mp4"
    w = cv2.VideoWriter(str(out), cv2.VideoWriter_fourcc(*"mp4v"), 10, SIZE)
    times = []
    for img in images:
        t0 = time.perf_counter()
        w.write(img)
        times.append(time.perf_counter() - t0)
    w.release()
    return times, [out]


def psnr(files: list[Path], images: list[np.ndarray]) -> float:
    """Mean PSNR (dB) of the decoded recording against the frames given to the encoder."""
    values = []
    for path in files:
        with av.open(str(path)) as c:
            for vf in c.decode(video=0):
                values.append(cv2.PSNR(vf.to_ndarray(format="bgr24"), images[len(values)]))
    return round(statistics.fmean(values), 2)


def main() -> int:
    if not CLIP.is_file():
        print(f"skipped: {CLIP} not found", file=sys.stderr)
        return 0
    images = load_frames()
    results = {}
    for name, fn in [("segment_recorder", bench_recorder), ("x264_ultrafast", bench_ultrafast),
                     ("opencv_mp4v", bench_mp4v)]:
        with tempfile.TemporaryDirectory() as tmp:
            times, files = fn(images, Path(tmp))
            size = sum(p.stat().st_size for p in files)
            quality = psnr(files, images)
        seconds = len(images) / 10
        results[name] = {
            "ms_per_frame_median": round(statistics.median(times) * 1000, 3),
            "ms_per_frame_mean": round(statistics.fmean(times) * 1000, 3),
            "fps_capacity": round(len(times) / sum(times), 1),
            "kbit_per_s": round(size * 8 / seconds / 1000, 1),
            "psnr_db": quality,
            "browser_playable": name != "opencv_mp4v",
        }
    results["_setup"] = {"frames": len(images), "size": list(SIZE), "fps": 10, "clip": CLIP.name}
    write_results("recording", results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
