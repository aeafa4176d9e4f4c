"""Motion detector: small grayscale frames in, score, boxes and a debounced motion flag out.

Sits between the camera source (Frame.gray) and the event tracker; pure, no I/O, one per camera.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import cv2
import numpy as np

from agent.config import MotionConfig
from agent.masks import detection_mask

Box = tuple[float, float, float, float]

_KERNEL3 = np.ones((3, 3), np.uint8)


@dataclass(frozen=True)
class MotionResult:
    """One analysed frame. score = fraction of the (zone-masked) area in motion; boxes normalised
    (x, y, w, h); motion = debounced over hysteresis_frames; calibrating = the background is being
    relearnt (after start or a global light change) and nothing is reported."""

    t: float
    score: float
    boxes: list[Box] = field(default_factory=list)
    motion: bool = False
    calibrating: bool = False


def threshold_for(sensitivity: float) -> float:
    """Grey-level difference (on the contrast-stretched 0..255 scale) that counts as change."""
    return 45.0 - 30.0 * sensitivity


def min_area_fraction_for(sensitivity: float) -> float:
    """Smallest blob, as a fraction of the analysed area, that counts as motion."""
    return 0.0015 * (1.0 - sensitivity) + 0.0002


class MotionDetector:
    """Running-average background subtraction tuned for street scenes (see docs/motion.md).

    Not thread-safe: one thread feeds it frames in time order.
    """

    def __init__(self, cfg: MotionConfig, size: tuple[int, int]) -> None:
        self.cfg = cfg
        width, height = size
        self.size = (int(width), int(height))
        scale = min(1.0, cfg.work_height / height)
        self.work = (max(16, round(width * scale)), max(12, round(height * scale)))
        ww, wh = self.work
        zone = detection_mask(
            [z.polygon for z in cfg.include_zones], [z.polygon for z in cfg.exclude_zones], ww, wh
        )
        self._zone = zone
        self._zone_bool = None if zone is None else zone > 0
        self._zone_area = float(ww * wh if zone is None else max(1, int(np.count_nonzero(zone))))
        self._threshold = threshold_for(cfg.sensitivity)
        self._min_area = max(2.0, min_area_fraction_for(cfg.sensitivity) * ww * wh)
        self.reset()

    def reset(self) -> None:
        """Forget the background and all history; the next frames calibrate again."""
        self._bg: np.ndarray | None = None
        self._lo = 0.0
        self._hi = 255.0
        self._last_analysed: float | None = None
        self._last_t: float | None = None
        self._calibrate_until = -math.inf
        self._run_on = 0
        self._run_off = 0
        self._motion = False

    def should_analyse(self, t: float) -> bool:
        """Rate cap: True if frame time t is at least 1/analysis_fps after the last analysed frame."""
        if self._last_analysed is None:
            return True
        # 5% slack so a 10 fps camera at a 5 fps cap keeps every other frame despite jitter.
        return t - self._last_analysed >= 0.95 / self.cfg.analysis_fps

    def analyse(self, gray: np.ndarray, t: float) -> MotionResult:
        """Compare one grayscale frame (h, w) uint8 with the background; update the background."""
        self._last_analysed = t
        frame = self._prepare(gray)
        dt = 1.0 / self.cfg.analysis_fps if self._last_t is None else max(1e-3, t - self._last_t)
        self._last_t = t
        if self._bg is None:
            self._bg = frame.astype(np.float32)
            self._calibrate_until = t + self.cfg.calibration_s
            return self._result(t, 0.0, [], raw=False, calibrating=True)
        calibrating = t < self._calibrate_until
        changed = self._changed(frame)
        if self._zone_bool is not None:
            changed[~self._zone_bool] = 0
        changed_frac = float(np.count_nonzero(changed)) / self._zone_area
        if changed_frac > self.cfg.global_change_fraction:
            # Lighting, not motion: IR switch, street light, exposure jump. Relearn quickly.
            self._calibrate_until = t + self.cfg.calibration_s
            calibrating = True
        boxes, area = ([], 0.0) if calibrating else self._blobs(changed)
        self._update_background(frame, changed, dt, calibrating)
        score = min(1.0, area / self._zone_area)
        return self._result(t, score, boxes, raw=bool(boxes), calibrating=calibrating)

    # -- stages -------------------------------------------------------------------------------------

    def _prepare(self, gray: np.ndarray) -> np.ndarray:
        if gray.ndim == 3:
            gray = cv2.cvtColor(gray, cv2.COLOR_BGR2GRAY)
        if (gray.shape[1], gray.shape[0]) != self.work:
            gray = cv2.resize(gray, self.work, interpolation=cv2.INTER_AREA)
        hist = cv2.calcHist([gray], [0], self._zone, [256], [0, 256]).ravel()
        cdf = np.cumsum(hist)
        total = cdf[-1]
        lo = float(np.searchsorted(cdf, total * 0.04))
        hi = float(np.searchsorted(cdf, total * 0.96))
        if self._bg is None:
            self._lo, self._hi = lo, hi
        else:
            k = self.cfg.contrast_alpha
            self._lo += k * (lo - self._lo)
            self._hi += k * (hi - self._hi)
        span = max(self._hi - self._lo, 16.0)
        stretched = cv2.convertScaleAbs(gray, alpha=255.0 / span, beta=-self._lo * 255.0 / span)
        return cv2.GaussianBlur(stretched, (5, 5), 0)

    def _changed(self, frame: np.ndarray) -> np.ndarray:
        """Binary change mask, tolerant of a 1 px shake and of a uniform brightness offset."""
        bg = cv2.convertScaleAbs(self._bg)
        bg_hi = cv2.dilate(bg, _KERNEL3)
        bg_lo = cv2.erode(bg, _KERNEL3)
        offset = float(np.median(cv2.subtract(frame, bg, dtype=cv2.CV_16S)))
        if offset:
            frame = cv2.convertScaleAbs(frame, alpha=1.0, beta=-offset)
        above = cv2.subtract(frame, bg_hi)
        below = cv2.subtract(bg_lo, frame)
        diff = cv2.max(above, below)
        _, changed = cv2.threshold(diff, self._threshold, 255, cv2.THRESH_BINARY)
        changed = cv2.morphologyEx(changed, cv2.MORPH_OPEN, _KERNEL3)
        return cv2.dilate(changed, _KERNEL3)

    def _blobs(self, changed: np.ndarray) -> tuple[list[Box], float]:
        n, _, stats, _ = cv2.connectedComponentsWithStats(changed, connectivity=8)
        ww, wh = self.work
        boxes: list[Box] = []
        area = 0.0
        for x, y, w, h, a in stats[1:n]:
            if a >= self._min_area:
                boxes.append((x / ww, y / wh, w / ww, h / wh))
                area += float(a)
        return boxes, area

    def _update_background(self, frame: np.ndarray, changed: np.ndarray, dt: float, calib: bool) -> None:
        tau = self.cfg.calibration_tau_s if calib else self.cfg.background_tau_s
        alpha = 1.0 - math.exp(-dt / tau)
        if calib:
            cv2.accumulateWeighted(frame, self._bg, alpha)
            return
        # Moving things are absorbed more slowly, so a passing car does not smear the background,
        # but something that stops (a parked van) still becomes background in time.
        still = cv2.bitwise_not(changed)
        cv2.accumulateWeighted(frame, self._bg, alpha, mask=still)
        slow = 1.0 - math.exp(-dt / (tau * self.cfg.moving_tau_factor))
        cv2.accumulateWeighted(frame, self._bg, slow, mask=changed)

    def _result(self, t: float, score: float, boxes: list[Box], raw: bool, calibrating: bool) -> MotionResult:
        n = self.cfg.hysteresis_frames
        if raw:
            self._run_on += 1
            self._run_off = 0
        else:
            self._run_off += 1
            self._run_on = 0
        if not self._motion and self._run_on >= n:
            self._motion = True
        elif self._motion and self._run_off >= n:
            self._motion = False
        if calibrating:
            self._motion = False
            self._run_on = 0
        return MotionResult(t, score, boxes, self._motion, calibrating)
