"""`cctv-agent detect VIDEO`: the unit's detector and event logic over a recorded file, flat out.

Site tuning for engineers: the same file source, MotionDetector and EventTracker as `run` (via
agent.detection.analyser.Analyser), but nothing is recorded, written or uploaded; events go to stdout.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass
from pathlib import Path

from agent.clock import SystemClock
from agent.config import Config, UnitConfig, load_config
from agent.detection.analyser import Analyser
from agent.errors import InputError
from agent.events.tracker import Event
from agent.progress import Progress
from agent.sources import make_source
from agent.sources.file import probe_video

DEFAULT_UNIT = "detect"
# A file this many frames short of what its header declares was cut off (the sample traffic clip
# legitimately lacks 2 of 750).
TRUNCATION_TOLERANCE = 0.02


@dataclass(frozen=True)
class DetectedEvent:
    """An event in seconds from the start of the file."""

    start: float
    end: float
    clip_start: float
    clip_end: float
    peak_time: float
    peak_score: float
    boxes: list[list[float]]
    previous: int | None  # index of the event this one continues (max clip split)

    def as_dict(self) -> dict:
        return {"start": self.start, "end": self.end, "clip_start": self.clip_start,
                "clip_end": self.clip_end, "peak_time": self.peak_time, "peak_score": self.peak_score,
                "boxes": self.boxes, "previous": self.previous}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("video", type=Path, help="video file to analyse")
    parser.add_argument("--config", type=Path, help="unit config (TOML); default: built-in defaults")
    parser.add_argument("--json", action="store_true", help="one JSON object per event per line")


def main(args: argparse.Namespace) -> int:
    cfg = load_config(args.config) if args.config else Config(unit=UnitConfig(id=DEFAULT_UNIT))
    progress = Progress(0, f"detect {args.video.name}", unit="frames")  # stderr: stdout stays the result
    events, frames = detect_file(cfg, args.video, progress)
    if args.json:
        for ev in events:
            print(json.dumps(ev.as_dict()))
    else:
        print(format_table(events, frames, args.video))
    return 0


def detect_file(cfg: Config, path: Path, progress: Progress | None = None
                ) -> tuple[list[DetectedEvent], int]:
    """Run the detector and tracker over every frame of `path`; (events, frames read).

    Raises InputError for a missing, non-video or truncated file. `progress` (frames) is shown for a
    long file: a bar on a terminal, a line every few seconds otherwise.
    """
    camera = cfg.camera.model_copy(update={"source": "file", "device": str(path), "pace": "fast",
                                           "loop": False})
    declared = probe_video(path).frames
    source = make_source(camera, SystemClock())
    source.open()
    analyser = Analyser(cfg, cfg.unit.id)
    closed: list[Event] = []
    frames, t0 = 0, None
    if progress is not None:
        progress.total = declared
    try:
        while (frame := source.read(timeout=5.0)) is not None:
            t0 = frame.t if t0 is None else t0
            frames += 1
            closed.extend(c.event for c in analyser.feed(frame))
            if progress is not None and frames % 25 == 0:
                progress.update(frames)
        closed.extend(c.event for c in analyser.finish())
    except BaseException:
        if progress is not None:
            progress.abandon()
        raise
    finally:
        source.close()
    problem = (f"{path}: no video frames could be decoded" if frames == 0 else
               f"{path}: truncated video: decoded {frames} of {declared} frames"
               if declared and frames < declared * (1 - TRUNCATION_TOLERANCE) else "")
    if progress is not None:
        if problem:
            progress.abandon()
        else:
            progress.update(frames)
            progress.close(f"{len(closed)} events")
    if problem:
        raise InputError(problem)
    return relative_events(closed, t0 or 0.0), frames



def relative_events(events: list[Event], t0: float) -> list[DetectedEvent]:
    index = {ev.event_id: i for i, ev in enumerate(events)}

    def rel(t: float) -> float:
        return round(t - t0, 3)  # clip_start may be negative: pre-roll before the file began

    return [DetectedEvent(start=rel(ev.start_t), end=rel(ev.end_t), clip_start=rel(ev.clip_start_t),
                          clip_end=rel(ev.clip_end_t), peak_time=rel(ev.peak_t),
                          peak_score=round(ev.peak_score, 6), boxes=ev.peak_boxes,
                          previous=index.get(ev.previous_event_id or ""))
            for ev in events]


def format_table(events: list[DetectedEvent], frames: int, path: Path) -> str:
    lines = [f"{path}: {frames} frames, {len(events)} events",
             f"{'#':>3} {'start':>8} {'end':>8} {'length':>7} {'peak at':>8} {'peak':>7} {'boxes':>5}  note"]
    for i, ev in enumerate(events):
        note = f"continues #{ev.previous}" if ev.previous is not None else ""
        lines.append(f"{i:>3} {_mmss(ev.start):>8} {_mmss(ev.end):>8} {ev.end - ev.start:>6.1f}s "
                     f"{_mmss(ev.peak_time):>8} {ev.peak_score:>7.4f} {len(ev.boxes):>5}  {note}")
    return "\n".join(lines)


def _mmss(seconds: float) -> str:
    m, s = divmod(max(0.0, seconds), 60)
    return f"{int(m)}:{s:04.1f}"
