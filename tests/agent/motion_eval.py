"""Scoring motion detectors against ground truth: CDnet pixel masks and event-level matching.

Used by the motion tests and by benchmarks/motion.py, so both measure the same way.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import av
import cv2
import numpy as np

from tests.agent.synthetic import DATA

CDNET = DATA / "cdnet_highway"
GT_MOTION, GT_OUTSIDE, GT_UNKNOWN = 255, 85, 170


@dataclass(frozen=True)
class CdnetTruth:
    """Per-frame ground truth of the CDnet highway clip, frames indexed from 0."""

    masks: list[np.ndarray]  # uint8 (240, 320) with the CDnet codes
    roi: np.ndarray  # bool (240, 320)
    first: int  # first evaluated frame (0-based)
    last: int  # last evaluated frame (0-based, inclusive)

    def motion_pixels(self, i: int) -> int:
        return int(np.count_nonzero((self.masks[i] == GT_MOTION) & self.roi))


def load_cdnet(path: Path = CDNET) -> CdnetTruth:
    """Decode the FFV1 ground truth, the ROI bitmap and temporalROI.txt (1-based, inclusive)."""
    masks: list[np.ndarray] = []
    with av.open(str(path / "highway_groundtruth_ffv1.mkv")) as container:
        for frame in container.decode(video=0):
            masks.append(frame.to_ndarray(format="gray"))
    roi = cv2.imread(str(path / "ROI.bmp"), cv2.IMREAD_GRAYSCALE) > 0
    first, last = (int(v) for v in (path / "temporalROI.txt").read_text().split())
    return CdnetTruth(masks, roi, first - 1, last - 1)


@dataclass
class PixelScore:
    tp: int = 0
    fp: int = 0
    fn: int = 0

    def add(self, predicted: np.ndarray, truth: np.ndarray, roi: np.ndarray) -> None:
        """Count one frame: predicted bool mask against CDnet codes (shadow/unknown not scored)."""
        scored = roi & (truth != GT_UNKNOWN) & (truth != GT_OUTSIDE)
        positive = truth == GT_MOTION
        self.tp += int(np.count_nonzero(predicted & positive & scored))
        self.fp += int(np.count_nonzero(predicted & ~positive & scored))
        self.fn += int(np.count_nonzero(~predicted & positive & scored))

    @property
    def precision(self) -> float:
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else 0.0

    @property
    def recall(self) -> float:
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else 0.0

    @property
    def f1(self) -> float:
        p, r = self.precision, self.recall
        return 2 * p * r / (p + r) if p + r else 0.0


def group_events(times: list[float], flags: list[bool], gap_s: float) -> list[tuple[float, float]]:
    """Runs of True frames as (start, end) seconds; runs closer than gap_s are merged into one."""
    events: list[tuple[float, float]] = []
    for t, on in zip(times, flags, strict=True):
        if not on:
            continue
        if events and t - events[-1][1] <= gap_s:
            events[-1] = (events[-1][0], t)
        else:
            events.append((t, t))
    return events


@dataclass(frozen=True)
class EventScore:
    true_events: int
    detected: int
    matched_true: int
    matched_detected: int

    @property
    def precision(self) -> float:
        return self.matched_detected / self.detected if self.detected else 1.0

    @property
    def recall(self) -> float:
        return self.matched_true / self.true_events if self.true_events else 1.0

    @property
    def f1(self) -> float:
        p, r = self.precision, self.recall
        return 2 * p * r / (p + r) if p + r else 0.0


def _overlaps(a: tuple[float, float], b: tuple[float, float], slack: float) -> bool:
    return a[0] <= b[1] + slack and b[0] <= a[1] + slack


def score_events(truth: list[tuple[float, float]], detected: list[tuple[float, float]],
                 slack_s: float = 0.5) -> EventScore:
    """One-to-one matching: each true event is paired with the first unpaired detected event that
    overlaps it (within slack_s). A detector that stays on and merges everything into one long
    event therefore finds one true event, not all of them."""
    used: set[int] = set()
    for t in truth:
        for j, d in enumerate(detected):
            if j not in used and _overlaps(t, d, slack_s):
                used.add(j)
                break
    return EventScore(len(truth), len(detected), len(used), len(used))
