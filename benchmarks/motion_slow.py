"""Slow movers for the motion benchmark (benchmarks/motion.py): real objects cut out of the real
clips, moving at 1-4 px/s (at 480 px width) over the clip's empty scene, under the same conditions.

Method (also in docs/motion.md):
- Object. The largest single moving object of each clip (two pedestrians on the forecourt, a car on
  the motorway and on the CDnet highway), cut out of the real frame where it is largest, its pixels
  being those that differ from the clip's temporal median, feathered at the edge
  (tests/agent/synthetic.py: cutout, slow_mover). It keeps its real texture and colours and is
  moved with sub-pixel interpolation: no 1 px jumps a frame-difference detector could see.
- Two ways in. "creep": the object is in the scene from the first frame (so it is part of the
  background the detector learns) and starts edging sideways after 14 s, like a person who
  crouched by a wall and starts crawling. "enter": the scene is empty for 14 s, then the object
  slides in from outside the left edge at the same speed. 54 s per sequence at 5 fps.
- Speeds: 2 px/s at 480 px width (1.33 px/s on the 320 px benchmark frames) under every condition;
  1 and 4 px/s in clean conditions.
- Truth. One true event per sequence, from the moment the object moves ("creep") or a quarter of
  it is in view ("enter") to the end. Scored per sequence: caught (an event that starts once the
  object moves, 1 s slack, and lasts to the true start or later), latency (its first flag from the
  true start on, minus the true start), false events (events that start while nothing moves yet,
  more than 1 s before the object starts moving), coverage (fraction of true frames flagged).
- Split. The detector's slow-mover changes were developed on the forecourt and motorway clips in
  the clean, night-noise, rain and shake conditions only ("dev"); every highway sequence and every
  other condition is "held_out" and was run only to report.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from tests.agent.motion_eval import group_events
from tests.agent.synthetic import Nuisance, cutout, read_frames, slow_mover

FPS = 5.0
LEAD_S, MOVE_S, SLACK_S = 14.0, 40.0, 1.0
DEV_CLIPS = ("forecourt", "motorway")
DEV_CONDITIONS = ("clean", "sensor_noise", "rain", "jitter")
ALL_CONDITIONS = (*DEV_CONDITIONS, "cloud_ramp", "light_step", "ir_switch", "held_out_heavy_night_noise",
                  "held_out_shake_in_rain")
# Where the object stands or edges along, (x, y) of its top-left corner on the 320x240 frame.
PLACES = {"forecourt": (40.0, 105.0), "motorway": (110.0, 135.0), "highway": (95.0, 120.0)}
SPEEDS = {"clean": (1.0, 2.0, 4.0)}  # px/s at 480 px width; 2 px/s in every other condition


@dataclass
class SlowSequence:
    name: str  # clip/mode/speed/condition
    frames: list[np.ndarray]
    truth_start: float  # seconds
    split: str  # "dev" or "held_out"


def build(clips: dict[str, tuple], size: tuple[int, int], conditions: dict[str, Callable[[int], Nuisance]],
          period: int, only_clip: str | None = None) -> list[SlowSequence]:
    """Every slow-mover sequence (or those of one clip, the same as among all): clips as in
    benchmarks/motion.py, conditions by name from there."""
    out = []
    scale = size[0] / 480.0
    n = round((LEAD_S + MOVE_S) * FPS)
    for c, (clip, (path, _fps, first, last)) in enumerate(clips.items()):
        if only_clip is not None and clip != only_clip:
            continue  # the seeds below follow the clip's place among all (c)
        colour = read_frames(path, size, gray=False)
        empty = np.median(np.stack(colour[first : last + 1 : 10]), axis=0).astype(np.uint8)
        patch, alpha = cutout(colour[first : last + 1 : 7], empty)
        pw = alpha.shape[1]
        for mode in ("creep", "enter"):
            x0, y0 = PLACES[clip]
            if mode == "enter":
                x0 = -float(pw)
            for k, cond in enumerate(ALL_CONDITIONS):
                for speed in SPEEDS.get(cond, (2.0,)):
                    v = speed * scale
                    move_from = round(LEAD_S * FPS)
                    draw = slow_mover(empty, patch, alpha, (x0, y0), (v, 0.0), FPS, move_from)
                    effect = conditions[cond](1000 + 100 * c + 10 * k + int(speed))
                    frames = [effect(i % period, draw(i)) for i in range(n)]
                    start = LEAD_S + (0.25 * pw / v if mode == "enter" else 0.0)
                    split = "dev" if clip in DEV_CLIPS and cond in DEV_CONDITIONS else "held_out"
                    out.append(SlowSequence(f"{clip}/{mode}/{speed:g}px_s/{cond}", frames, start, split))
    return out


def score(seq: SlowSequence, flags: list[bool], gap_s: float) -> dict:
    """Caught: an event that starts once the object moves (LEAD_S, 1 s slack) and is still on at
    the true start or later. False: an event that starts while nothing moves yet (a detector that
    is on all along, as the frame difference is in the sensor noise of every condition, makes one
    false event and catches nothing)."""
    times = [i / FPS for i in range(len(flags))]
    events = group_events(times, flags, gap_s)
    early = [e for e in events if e[0] < LEAD_S - SLACK_S]
    found = [e for e in events if e[0] >= LEAD_S - SLACK_S and e[1] >= seq.truth_start - SLACK_S]
    hits = [max(e[0], seq.truth_start) for e in found]
    truth = [f for t, f in zip(times, flags, strict=True) if t >= seq.truth_start]
    latency = round(max(0.0, hits[0] - seq.truth_start), 1) if hits else None
    return {"caught": bool(hits), "latency_s": latency,
            "false_events": len(early), "coverage": round(sum(truth) / max(1, len(truth)), 3)}


def evaluate(sequences: list[SlowSequence], flags: dict[str, list[bool]], gap_s: float) -> dict:
    """Per split: recall (sequences caught), false events, median latency and coverage; per case."""
    cases = {s.name: {**score(s, flags[s.name], gap_s), "split": s.split} for s in sequences}
    result: dict = {}
    for split in ("dev", "held_out", "all"):
        rows = [c for c in cases.values() if split in ("all", c["split"])]
        lat = [c["latency_s"] for c in rows if c["latency_s"] is not None]
        result[split] = {"sequences": len(rows), "caught": sum(c["caught"] for c in rows),
                         "recall": round(sum(c["caught"] for c in rows) / max(1, len(rows)), 4),
                         "false_events": sum(c["false_events"] for c in rows),
                         "median_latency_s": round(float(np.median(lat)), 1) if lat else None,
                         "max_latency_s": max(lat) if lat else None,
                         "median_coverage": round(float(np.median([c["coverage"] for c in rows])), 3)}
    missed = sorted(name for name, c in cases.items() if not c["caught"])
    return {**result, "missed": missed, "cases": cases}
