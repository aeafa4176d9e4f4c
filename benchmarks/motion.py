"""Motion detection benchmark: the project's detector against OpenCV MOG2 and the picamera2-style
frame difference, on the same real-footage sequences, in one run; writes results/motion.json.

Method (also in docs/motion.md):
- Sequences. For each real clip in ../shared/data (forecourt pedestrians, motorway, CDnet highway)
  and each condition (clean, night sensor noise, cloud ramp, light step, IR switch, rain, 1-2 px
  shake) one 66 s sequence at the 5 fps analysis rate: 6 s of the empty scene, then three times
  12 s empty + 4 s of real footage, then 12 s empty. "Empty" is the temporal median of the clip
  (real footage with the moving objects removed). The condition is applied to every frame of the
  sequence, real footage included; light steps and IR switches happen in the middle of empty
  stretches, so the lighting changes every 16 s and stays changed while real motion passes.
- Ground truth. Each 4 s stretch of real footage is one true event; the empty stretches contain
  none. Justification: the CDnet highway stretches are taken from its evaluated frames (470-1700),
  where the per-pixel ground truth marks moving vehicles in the region of interest in every frame;
  the forecourt and motorway clips have people or vehicles moving in every frame (checked by eye
  on a contact sheet of frames spread over each clip).
- Decisions. Every detector sees the same 5 fps 320x240 grayscale frames. Ours reports `motion`
  (its own hysteresis). The baselines get the same 2-frame on/off hysteresis over a per-frame
  decision: MOG2 (OpenCV defaults: history 500, varThreshold 16, shadows detected and ignored)
  fires when foreground pixels after a 3x3 opening exceed 0.2% of the frame; the frame difference
  fires when the mean squared difference of consecutive frames (cast to int32, not wrapping uint8)
  exceeds 7, as in the picamera2 capture examples. "tuned" gives each baseline its best threshold
  on this very benchmark (a favour to the baselines).
- Events. Motion flags are grouped into events, runs closer than 2 s merged (as an event tracker's
  post-roll would). A true event is found if a detected event overlaps it (1 s slack); a detected
  event is correct if it overlaps a true event. Precision, recall and F1 are over all sequences.
- Cost. Median wall time of the detector call per analysed frame, over every frame of the run
  (thousands), measured with perf_counter on a machine shared with other work, so the median;
  also the median over the frames with real motion in them, which cost more.
- Order. Runs that only give accuracy do not depend on time, so they use every core: first the
  slow-mover sequences (one process per clip builds its sequences and runs every detector on them)
  while this process builds the main sequences; then the timed runs (ours, ours without the
  slow-mover path, both baselines) one at a time with nothing else of this benchmark running; then
  ours at the other sensitivities in parallel. Wall time of each stage in `_meta.took_s`.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import multiprocessing
import os
import platform
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import motion_slow  # noqa: E402
from motion_sequences import CLIPS, CONDITIONS, FPS, PERIOD, SIZE, Run, Sequence, build_sequences  # noqa: E402

from agent.config import MotionConfig  # noqa: E402
from agent.detection.motion import MotionDetector  # noqa: E402
from agent.fsutil import atomic_write_bytes  # noqa: E402
from tests.agent.motion_eval import EventScore, PixelScore, group_events, load_cdnet, score_events  # noqa: E402
from tests.agent.synthetic import read_frames  # noqa: E402

GAP_S, SLACK_S, HYSTERESIS = 2.0, 1.0, 2
MOG2_MIN_FRACTION, MSE_THRESHOLD = 0.002, 7.0


def run_ours(sequences: list[Sequence], cfg: MotionConfig) -> Run:
    run = Run()
    for seq in sequences:
        det = MotionDetector(cfg, SIZE)
        scores, flags = [], []
        for i, frame in enumerate(seq.frames):
            t0 = time.perf_counter()
            r = det.analyse(frame, i / FPS)
            run.ms.append((time.perf_counter() - t0) * 1e3)
            scores.append(r.score)
            flags.append(r.motion)
        run.values[seq.name], run.flags[seq.name] = scores, flags
    return run


def run_baseline(sequences: list[Sequence], make: Callable[[], Callable[[np.ndarray], float]]) -> Run:
    run = Run()
    for seq in sequences:
        measure = make()
        values = []
        for frame in seq.frames:
            t0 = time.perf_counter()
            values.append(measure(frame))
            run.ms.append((time.perf_counter() - t0) * 1e3)
        run.values[seq.name] = values
    return run


def mog2() -> Callable[[np.ndarray], float]:
    sub = cv2.createBackgroundSubtractorMOG2()
    kernel = np.ones((3, 3), np.uint8)

    def measure(frame: np.ndarray) -> float:
        fg = cv2.threshold(sub.apply(frame), 200, 255, cv2.THRESH_BINARY)[1]  # 127 = shadow
        return cv2.countNonZero(cv2.morphologyEx(fg, cv2.MORPH_OPEN, kernel)) / fg.size

    return measure


def frame_mse() -> Callable[[np.ndarray], float]:
    prev: list[np.ndarray] = []

    def measure(frame: np.ndarray) -> float:
        cur = frame.astype(np.int32)
        mse = float(np.square(cur - prev[0]).mean()) if prev else 0.0
        prev[:] = [cur]
        return mse

    return measure


def debounce(raw: list[bool], n: int = HYSTERESIS) -> list[bool]:
    """n consecutive frames to switch on, n to switch off (the same rule as ours)."""
    out, on, run_on, run_off = [], False, 0, 0
    for r in raw:
        run_on, run_off = (run_on + 1, 0) if r else (0, run_off + 1)
        on = True if run_on >= n else False if run_off >= n else on
        out.append(on)
    return out


def evaluate(sequences: list[Sequence], flags: dict[str, list[bool]]) -> dict:
    total = EventScore(0, 0, 0, 0)
    frame_tp = frame_fp = frame_fn = 0
    per_condition: dict[str, list[int]] = {}
    for seq in sequences:
        f = flags[seq.name]
        times = [i / FPS for i in range(len(f))]
        s = score_events(seq.truth, group_events(times, f, GAP_S), SLACK_S)
        total = EventScore(*(a + b for a, b in zip(vars(total).values(), vars(s).values(), strict=True)))
        cond = seq.name.split("/")[1]
        per_condition.setdefault(cond, [0, 0])
        per_condition[cond][0] += s.detected - s.matched_detected
        per_condition[cond][1] += s.true_events - s.matched_true
        truth = [any(a <= t <= b for a, b in seq.truth) for t in times]
        frame_tp += sum(x and y for x, y in zip(f, truth, strict=True))
        frame_fp += sum(x and not y for x, y in zip(f, truth, strict=True))
        frame_fn += sum(y and not x for x, y in zip(f, truth, strict=True))
    return {
        "precision": round(total.precision, 4),
        "recall": round(total.recall, 4),
        "f1": round(total.f1, 4),
        "true_events": total.true_events,
        "detected_events": total.detected,
        "false_events_by_condition": {k: v[0] for k, v in per_condition.items()},
        "missed_events_by_condition": {k: v[1] for k, v in per_condition.items()},
        "frame_precision": round(frame_tp / max(1, frame_tp + frame_fp), 4),
        "frame_recall": round(frame_tp / max(1, frame_tp + frame_fn), 4),
    }


def thresholded(run: Run, threshold: float) -> dict[str, list[bool]]:
    return {name: debounce([v > threshold for v in vals]) for name, vals in run.values.items()}


def best_threshold(sequences: list[Sequence], run: Run, candidates: np.ndarray) -> dict:
    best = max(candidates, key=lambda th: evaluate(sequences, thresholded(run, th))["f1"])
    return {"threshold": float(best), **evaluate(sequences, thresholded(run, best))}


def cdnet_pixels() -> dict:
    """Pixel agreement on CDnet highway frames 470-1700 at 5 fps, ours against MOG2 (a side note:
    MOG2 is a segmenter, ours an event detector)."""
    truth = load_cdnet()
    frames = read_frames(CLIPS["highway"][0], SIZE)
    det, sub = MotionDetector(MotionConfig(), SIZE), cv2.createBackgroundSubtractorMOG2()
    ours, theirs = PixelScore(), PixelScore()
    for i in range(0, len(frames), 5):
        r = det.analyse(frames[i], i / 25)
        fg = sub.apply(frames[i]) == 255
        if truth.first <= i <= truth.last:
            m = det.mask
            mine = np.zeros(truth.roi.shape, bool)
            if m is not None and r.boxes:
                mine = cv2.resize(m, SIZE, interpolation=cv2.INTER_NEAREST) > 0
            ours.add(mine, truth.masks[i], truth.roi)
            theirs.add(fg, truth.masks[i], truth.roi)
    return {k: {"precision": round(s.precision, 4), "recall": round(s.recall, 4), "f1": round(s.f1, 4)}
            for k, s in (("ours", ours), ("mog2", theirs))}


def timing(run: Run, busy: np.ndarray) -> dict:
    """Median over every frame, and over the frames with real motion (the busier, costlier ones)."""
    ms = np.array(run.ms)
    return {"ms_per_frame": round(float(np.median(ms)), 4), "ms_p90": round(float(np.percentile(ms, 90)), 4),
            "ms_per_frame_with_motion": round(float(np.median(ms[busy])), 4), "frames": len(ms)}


def busy_frames(sequences: list[Sequence]) -> np.ndarray:
    return np.array([any(a <= i / FPS <= b for a, b in seq.truth)
                     for seq in sequences for i in range(len(seq.frames))])


# Untimed runs (accuracy only) go to forked worker processes: a "main" task runs on the main sequences
# (built before its pool, so inherited); a "slow" task builds one clip's slow-mover sequences in its
# worker and runs every detector of SLOW_DETECTORS on them, returning the sequences without frames.
_MAIN: list[Sequence] = []
SLOW_DETECTORS = ("ours", "ours_plain", "mog2", "frame_mse")
Task = tuple[str, str, float | None]  # ("main", detector, sensitivity or None) | ("slow", clip, None)


def _untimed(seqs: list[Sequence], kind: str, sensitivity: float | None = None) -> Run:
    if kind in ("ours", "ours_plain"):
        settings = {} if sensitivity is None else {"sensitivity": sensitivity}
        settings |= {} if kind == "ours" else {"slow_window_s": 0.0}
        run = run_ours(seqs, MotionConfig(**settings))
    else:
        run = run_baseline(seqs, mog2 if kind == "mog2" else frame_mse)
    run.ms = []  # not timed: other runs share the cores
    return run


def _task(task: Task) -> Any:
    if task[0] == "main":
        return _untimed(_MAIN, task[1], task[2])
    seqs = motion_slow.build(CLIPS, SIZE, CONDITIONS, PERIOD, only_clip=task[1])
    as_seq = [Sequence(s.name, s.frames, []) for s in seqs]
    runs = [_untimed(as_seq, kind) for kind in SLOW_DETECTORS]
    return [dataclasses.replace(s, frames=[]) for s in seqs], runs


def untimed_pool(main: list[Sequence], tasks: list[Task], workers: int) -> tuple[Any, Any]:
    """Accuracy-only tasks started in `workers` processes (their flags do not depend on time):
    (pool, AsyncResult); use the pool as a context manager and get() the results inside it."""
    _MAIN[:] = main
    pool = multiprocessing.get_context("fork").Pool(max(1, workers))
    return pool, pool.map_async(_task, tasks, chunksize=1)


def run_untimed(main: list[Sequence], tasks: list[Task]) -> list[Any]:
    """Accuracy-only tasks, on every core at once."""
    pool, pending = untimed_pool(main, tasks, min(len(tasks), os.cpu_count() or 1))
    with pool:
        return pending.get()


def slow_runs(parts: list[tuple[list, list[Run]]], split: str | None = None) -> tuple[list, list[Run]]:
    """The slow-mover tasks' results joined in clip order: the sequences (of `split`, or all) and one
    Run per detector of SLOW_DETECTORS."""
    seqs = [s for part, _ in parts for s in part if split in (None, s.split)]
    runs = []
    for i in range(len(SLOW_DETECTORS)):
        run = Run()
        for _, part_runs in parts:
            run.values |= part_runs[i].values
            run.flags |= part_runs[i].flags
        runs.append(run)
    return seqs, runs


def slow_movers(seqs: list, runs: list[Run], tuned: dict[str, float] | None = None) -> dict:
    """Ours, ours without the slow-mover path and both baselines on the slow-mover sequences (the
    runs of SLOW_DETECTORS, in that order)."""
    ours, plain, mog, mse = runs
    out = {"method": "see the module docstring of benchmarks/motion_slow.py",
           "ours": motion_slow.evaluate(seqs, ours.flags, GAP_S),
           "ours_without_slow_path": motion_slow.evaluate(seqs, plain.flags, GAP_S),
           "mog2": motion_slow.evaluate(seqs, thresholded(mog, MOG2_MIN_FRACTION), GAP_S),
           "frame_mse": motion_slow.evaluate(seqs, thresholded(mse, MSE_THRESHOLD), GAP_S)}
    for name, th in (tuned or {}).items():
        run = mog if name == "mog2" else mse
        out[name]["at_tuned_threshold"] = {k: v for k, v in motion_slow.evaluate(
            seqs, thresholded(run, th), GAP_S).items() if k != "cases"}
    return out


def show_slow(slow: dict) -> None:
    for name in ("ours", "ours_without_slow_path", "mog2", "frame_mse"):
        for split in ("dev", "held_out"):
            r = slow[name][split]
            if r["sequences"]:
                print(f"slow movers {name:22} {split:8} caught {r['caught']}/{r['sequences']}"
                      f"  false events {r['false_events']}  median latency {r['median_latency_s']} s"
                      f"  coverage {r['median_coverage']}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--slow-only", choices=["dev", "held_out", "all"],
                    help="only the slow-mover sequences of this split; print, write nothing (development)")
    args = ap.parse_args()
    missing = [str(p) for p, *_ in CLIPS.values() if not p.exists()]
    if missing:
        print(f"benchmarks/motion.py: footage missing: {', '.join(missing)}", file=sys.stderr)
        return 2
    cv2.setNumThreads(1)  # like the unit: one analysis thread, the other cores record
    if args.slow_only:
        parts = run_untimed([], [("slow", clip, None) for clip in CLIPS])
        slow = slow_movers(*slow_runs(parts, None if args.slow_only == "all" else args.slow_only))
        show_slow(slow)
        for name in ("ours", "mog2"):
            print(name, "missed:", slow[name]["missed"])
        print("ours false events:", {k: v["false_events"] for k, v in slow["ours"]["cases"].items()
                                     if v["false_events"]})
        return 0
    took: dict[str, float] = {}
    t0 = time.monotonic()
    # untimed first: the slow-mover tasks (one per clip) while this process builds the main sequences
    pool, pending = untimed_pool([], [("slow", clip, None) for clip in CLIPS], len(CLIPS))
    with pool:
        sequences = build_sequences()
        slow_seqs, slow = slow_runs(pending.get())
    took["slow_movers_and_sequences_in_parallel"] = round(time.monotonic() - t0, 1)
    cfg = MotionConfig()
    # timed: one at a time, nothing else running
    t0 = time.monotonic()
    ours = run_ours(sequences, cfg)
    mog = run_baseline(sequences, mog2)
    mse = run_baseline(sequences, frame_mse)
    plain = run_ours(sequences, MotionConfig(slow_window_s=0.0))  # as before the slow-mover path
    took["timed_one_at_a_time"] = round(time.monotonic() - t0, 1)
    # untimed: other sensitivities, in parallel
    t0 = time.monotonic()
    sensitivities = (0.25, 0.75)
    runs = run_untimed(sequences, [("main", "ours", s) for s in sensitivities])
    by_sensitivity = dict(zip(sensitivities, runs, strict=True))
    took["sensitivities_in_parallel"] = round(time.monotonic() - t0, 1)
    busy = busy_frames(sequences)
    results = {
        "ours": {**timing(ours, busy), **evaluate(sequences, ours.flags),
                 "settings": "MotionConfig() defaults (sensitivity 0.5, hysteresis 2, "
                             "slow-mover path on: slow_window_s 8)"},
        "mog2": {**timing(mog, busy), **evaluate(sequences, thresholded(mog, MOG2_MIN_FRACTION)),
                 "settings": f"OpenCV defaults; foreground > {MOG2_MIN_FRACTION:.1%} of frame, hysteresis 2",
                 "tuned": best_threshold(sequences, mog, np.geomspace(0.0002, 0.05, 25))},
        "frame_mse": {**timing(mse, busy), **evaluate(sequences, thresholded(mse, MSE_THRESHOLD)),
                      "settings": f"mean squared difference of consecutive frames > {MSE_THRESHOLD}, "
                                  "int32, hysteresis 2",
                      "tuned": best_threshold(sequences, mse, np.geomspace(1, 400, 25))},
    }
    for s, run in by_sensitivity.items():
        results["ours"][f"at_sensitivity_{s}"] = evaluate(sequences, run.flags)
    results["ours"]["without_slow_path"] = {**timing(plain, busy), **evaluate(sequences, plain.flags)}
    results["slow_movers"] = slow_movers(slow_seqs, slow,
                                         {"mog2": results["mog2"]["tuned"]["threshold"],
                                          "frame_mse": results["frame_mse"]["tuned"]["threshold"]})
    results["_meta"] = {
        "method": "see the module docstring of benchmarks/motion.py and docs/motion.md",
        "sequences": len(sequences), "fps": FPS, "size": list(SIZE), "took_s": took,
        "cdnet_pixel_agreement_5fps": cdnet_pixels(),
        "machine": {"platform": platform.platform(), "python": platform.python_version(),
                    "opencv": cv2.__version__, "cpus": os.cpu_count(), "loadavg": os.getloadavg(),
                    "note": "shared machine; medians over every analysed frame"},
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    out = ROOT / "benchmarks" / "results" / "motion.json"
    atomic_write_bytes(out, (json.dumps(results, indent=2) + "\n").encode(), mode=0o644)
    for name in ("ours", "mog2", "frame_mse"):
        r = results[name]
        print(f"{name:10} {r['ms_per_frame']:.3f} ms/frame ({r['ms_per_frame_with_motion']:.3f} with motion)"
              f"  P {r['precision']:.3f}  R {r['recall']:.3f}  F1 {r['f1']:.3f}"
              f"  ({r['detected_events']} events for {r['true_events']} true)")
    show_slow(results["slow_movers"])
    print(f"wrote {out.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
