"""Benchmark: event clip cutting and the whole `run`/`detect` pipeline, each beside a baseline in one
run; writes benchmarks/results/events.json.

- clip: a 20 s event clip from 720p 10 s segments recorded by agent.recording.segments.SegmentRecorder.
  `stream_copy` is agent.events.clips.cut_clip (no re-encode); the baseline `reencode` decodes the same
  range and encodes it again with libx264 ultrafast into a faststart MP4. Median of repeated cuts.
- pipeline: CPU seconds (all threads, time.process_time) per second of video over the sample clip
  (480x360, 10 fps, 79.5 s) read flat out: `run` (decode + H.264 recording + motion + events +
  clips + records), `detect` (decode + motion + events), and the baseline `decode_only` (the file
  source alone), so the cost of each stage shows as a difference.
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path

import av
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from report import write_results  # noqa: E402

from agent.clock import ManualClock, SystemClock  # noqa: E402
from agent.config import Config, UnitConfig, parse_config  # noqa: E402
from agent.db import connect, db_path  # noqa: E402
from agent.detect import detect_file  # noqa: E402
from agent.events.clips import cut_clip  # noqa: E402
from agent.recording.segments import SegmentIndex, SegmentRecorder  # noqa: E402
from agent.runner import run  # noqa: E402
from agent.sources import Frame, make_source  # noqa: E402

CLIP = ROOT / ".." / "shared" / "data" / "opencv_vtest_480x360.avi"
T0 = 1_767_225_600.0
REPEAT = 15


def record_720p(data_dir: Path, seconds: float = 40.0) -> tuple[list, float]:
    """Record the sample clip upscaled to 720p with the project's recorder; (segments, t0)."""
    cfg = parse_config({"unit": {"id": "bench", "data_dir": str(data_dir)},
                        "camera": {"fps": 10}}, env={})
    clock = ManualClock(wall=T0, mono=100.0)
    conn = connect(db_path(data_dir))
    index = SegmentIndex(conn)
    recorder = SegmentRecorder(cfg, clock, index)
    with av.open(str(CLIP)) as c:
        for i, vf in enumerate(c.decode(video=0)):
            if i >= seconds * 10:
                break
            image = vf.reformat(width=1280, height=720, format="bgr24").to_ndarray()
            gray = np.zeros((240, 320), np.uint8)
            recorder.write(Frame(i, 100.0 + i / 10, T0 + i / 10, image, gray))
    recorder.close()
    return index.all(), T0


def reencode(segments: list, start: float, end: float, out: Path) -> None:
    with av.open(str(out), "w", format="mp4", options={"movflags": "+faststart"}) as o:
        stream = None
        n = 0
        for seg in segments:
            with av.open(str(seg.path)) as inp:
                for vf in inp.decode(video=0):
                    t = seg.start + float(vf.time or 0)
                    if t < start or t > end:
                        continue
                    if stream is None:
                        stream = o.add_stream("libx264", rate=10, options={"preset": "ultrafast"})
                        stream.width, stream.height, stream.pix_fmt = vf.width, vf.height, "yuv420p"
                    vf = vf.reformat(format="yuv420p")
                    vf.pts = n
                    n += 1
                    o.mux(stream.encode(vf))
        o.mux(stream.encode())


def bench_clip(tmp: Path) -> dict:
    segments, t0 = record_720p(tmp / "unit")
    start, end = t0 + 7.0, t0 + 27.0
    results = {}
    for name, fn in (("stream_copy", lambda out: cut_clip(segments, start, end, out)),
                     ("reencode", lambda out: reencode(segments, start, end, out))):
        times, size = [], 0
        for i in range(REPEAT if name == "stream_copy" else 3):
            out = tmp / f"{name}{i}.mp4"
            began = time.perf_counter()
            fn(out)
            times.append((time.perf_counter() - began) * 1000)
            size = out.stat().st_size
        results[name] = {"ms_median": round(statistics.median(times), 2), "bytes": size,
                         "runs": len(times)}
    results["_setup"] = {"clip_s": end - start, "size": [1280, 720], "segment_s": 10}
    return results


def cpu(fn) -> float:
    began = time.process_time()
    fn()
    return time.process_time() - began


def decode_only() -> None:
    cfg = Config(unit=UnitConfig(id="bench"))
    cam = cfg.camera.model_copy(update={"source": "file", "device": str(CLIP), "pace": "fast"})
    source = make_source(cam, SystemClock())
    source.open()
    while source.read(5.0) is not None:
        pass
    source.close()


def bench_pipeline(tmp: Path) -> dict:
    video_s = 79.5
    cfg = parse_config({
        "unit": {"id": "bench", "data_dir": str(tmp / "run")},
        "camera": {"source": "file", "device": str(CLIP.resolve()), "width": 480, "height": 360,
                   "fps": 10, "pace": "fast"},
        "recording": {"bitrate_kbps": 600}, "upload": {"enabled": False}, "status": {"enabled": False},
    }, env={})
    out = {}
    for name, fn in (("decode_only", decode_only),
                     ("detect", lambda: detect_file(cfg, CLIP)),
                     ("run", lambda: run(cfg, SystemClock()))):
        seconds = cpu(fn)
        out[name] = {"cpu_s": round(seconds, 2), "cpu_s_per_video_s": round(seconds / video_s, 4)}
    out["_setup"] = {"video": CLIP.name, "video_s": video_s, "size": [480, 360], "fps": 10}
    return out


def main() -> int:
    if not CLIP.is_file():
        print(f"sample footage {CLIP} is absent; nothing measured", file=sys.stderr)
        return 1
    with tempfile.TemporaryDirectory() as d:
        results = {"clip": bench_clip(Path(d)), "pipeline": bench_pipeline(Path(d))}
    write_results("events", results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
