"""Snapshot memory benchmark: the resident memory one event's files add for a moment in the agent
(clip cut, peak-frame decode, masked JPEGs); writes results/snapshot_memory.json.

Method: 60 s of the real forecourt clip (../shared/data/opencv_vtest_480x360.avi) upscaled to 1280x720
and encoded as the Pi's encoder does (libx264 ultrafast, zerolatency, a keyframe every 20 frames,
headers repeated) into six 10 s segments. A fresh `python -OO` process per agent revision, malloc tuned
as `cctv-agent run` tunes it (agent.memory.tune_process), writes the files of `--events` events
(cut_clip, frame_at, write_snapshots with a privacy mask and boxes) after one warm-up event; before
each step the peak RSS is reset (/proc/self/clear_refs 5) and after it VmHWM is read, relative to the
RSS before the event (heap trimmed, as between events in the agent). `--before REV` runs the agent of
git revision REV the same way in the same run; the snapshots of both must be byte-identical.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import av
import cv2

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from agent_procs import export_revision  # noqa: E402
from report import RESULTS_DIR, write_results  # noqa: E402

from tests.agent.footage import VTEST  # noqa: E402

SIZE, FPS, GOP, SEG_S = (1280, 720), 10, 20, 10
# (clip start, clip end, peak) in seconds from the first segment's start
EVENTS = [(2, 40, 21.95), (15, 55, 31.3), (0, 59, 44.2), (20, 50, 35.05), (5, 45, 12.3), (10, 30, 29.9),
          (30, 59.9, 58.9), (1, 25, 3.1)]

CHILD = """
import hashlib, json, sys, tempfile
from pathlib import Path
from agent.memory import release_free_heap, tune_process
tune_process()
from agent.detection.masks import PrivacyMasker
from agent.events.clips import cut_clip, frame_at, write_snapshots
class Seg:
    def __init__(self, path, start, end):
        self.path, self.start, self.end = Path(path), start, end
def status():
    return {k: int(v.split()[0]) / 1024 for k, _, v in (l.partition(":") for l in open("/proc/self/status"))
            if k in ("VmRSS", "VmHWM")}
def reset():
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")
segs = [Seg(*s) for s in json.loads(sys.argv[1])]
events = json.loads(sys.argv[2])
masker = PrivacyMasker([[(0.0, 0.0), (0.3, 0.0), (0.3, 0.2), (0.0, 0.2)]])
boxes = [[0.4, 0.4, 0.1, 0.2], [0.6, 0.3, 0.05, 0.1]]
work = Path(tempfile.mkdtemp(prefix="snapmem-"))
t0 = segs[0].start
rows = []
for k, (a, b, peak) in enumerate(events):
    folder = work / str(k)
    folder.mkdir()
    release_free_heap()
    base = status()["VmRSS"]
    reset()
    info = cut_clip(segs, t0 + a, t0 + b, folder / "clip.mp4")
    cut = status()["VmHWM"] - base
    reset()
    image = frame_at(folder / "clip.mp4", t0 + peak - info.start)
    decode = status()["VmHWM"] - base
    reset()
    write_snapshots(image, boxes, masker, folder, copy=False)
    snap = status()["VmHWM"] - base
    del image
    release_free_heap()
    import agent
    rows.append({"agent": str(Path(agent.__file__).parent), "cut_mb": round(cut, 2),
                 "frame_at_mb": round(decode, 2), "write_snapshots_mb": round(snap, 2),
                 "event_mb": round(max(cut, decode, snap), 2), "rss_before_mb": round(base, 1),
                 "left_after_mb": round(status()["VmRSS"] - base, 2),
                 "sha256": [hashlib.sha256((folder / n).read_bytes()).hexdigest()
                            for n in ("snapshot.jpg", "snapshot_boxes.jpg")]})
print(json.dumps(rows[1:]))  # the first event is the warm-up (codec tables, libjpeg)
"""


def make_segments(folder: Path) -> list[tuple[str, float, float]]:
    """Six 10 s segments of the forecourt clip at 720p, encoded with the Pi encoder's settings."""
    cap = cv2.VideoCapture(str(VTEST))
    start, segs = 1_767_225_600.0, []
    for i in range(6):
        path = folder / f"seg{i}.mp4"
        with av.open(str(path), "w", format="mp4") as out:
            stream = out.add_stream("libx264", rate=FPS)
            stream.width, stream.height, stream.pix_fmt = *SIZE, "yuv420p"
            stream.options = {"preset": "ultrafast", "tune": "zerolatency", "g": str(GOP),
                              "x264-params": "repeat-headers=1"}
            for _ in range(SEG_S * FPS):
                ok, frame = cap.read()
                if not ok:  # the clip is 79.5 s: loop
                    cap.set(cv2.CAP_PROP_POS_FRAMES, 0)
                    ok, frame = cap.read()
                big = cv2.resize(frame, SIZE, interpolation=cv2.INTER_CUBIC)
                out.mux(stream.encode(av.VideoFrame.from_ndarray(big, format="bgr24")))
            out.mux(stream.encode())
        segs.append((str(path), start + i * SEG_S, start + (i + 1) * SEG_S))
    cap.release()
    return segs



def run_child(path: Path, segs: list, events: list) -> list[dict]:
    env = {**os.environ, "PYTHONPATH": str(path)}  # and cwd: `-c` puts the working directory first
    out = subprocess.run([sys.executable, "-OO", "-c", CHILD, json.dumps(segs), json.dumps(events)],
                         env=env, cwd=path, capture_output=True, text=True, check=True, timeout=600)
    return json.loads(out.stdout)


def summary(rows: list[dict]) -> dict:
    keys = ("cut_mb", "frame_at_mb", "write_snapshots_mb", "event_mb", "left_after_mb")
    return {**{f"{k[:-3]}_peak_median_mb": round(statistics.median(r[k] for r in rows), 2) for k in keys},
            **{f"{k[:-3]}_peak_max_mb": round(max(r[k] for r in rows), 2) for k in keys}, "events": rows}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--before", metavar="REV", help="also measure the agent of this git revision")
    ap.add_argument("--rounds", type=int, default=2, help="fresh processes per agent, alternating")
    ap.add_argument("--out", type=Path, default=RESULTS_DIR / "snapshot_memory.json")
    args = ap.parse_args()
    if not VTEST.is_file():
        print(f"benchmarks/snapshot_memory.py: footage missing: {VTEST}", file=sys.stderr)
        return 2
    if args.rounds < 1:
        print("benchmarks/snapshot_memory.py: --rounds must be at least 1", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="snapmem-") as tmp:
        work = Path(tmp)
        segs = make_segments(work)
        agents = {"after": ROOT}
        if args.before:
            agents["before"] = export_revision(args.before, work, ROOT)
        rows: dict[str, list[dict]] = {name: [] for name in agents}
        for _ in range(args.rounds):  # alternate, so both see the same machine
            for name, path in agents.items():
                rows[name] += run_child(path, segs, EVENTS)
    results: dict = {name: summary(r) for name, r in rows.items()}
    if "before" in results:
        same = [a["sha256"] == b["sha256"] for a, b in zip(rows["after"], rows["before"], strict=True)]
        results["snapshots_identical_to_before"] = all(same)
        results["event_peak_saved_mb"] = round(results["before"]["event_peak_max_mb"]
                                               - results["after"]["event_peak_max_mb"], 2)
    results["_meta"] = {"method": "see the module docstring of benchmarks/snapshot_memory.py",
                        "before_revision": args.before, "after_revision": "working tree",
                        "events_per_process": len(EVENTS) - 1, "rounds": args.rounds,
                        "footage": "forecourt 1280x720 10 fps, x264 ultrafast zerolatency, GOP 20, 6 x 10 s",
                        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    shown = {k: ({kk: vv for kk, vv in v.items() if kk != "events"} if isinstance(v, dict) and k != "_meta"
                 else v) for k, v in results.items() if k != "_meta"}
    write_results(args.out, results, shown)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
