"""Motion detector: small grayscale frames in, score, boxes and a debounced motion flag out.

Sits between the camera source (Frame.gray) and the event tracker; pure, no I/O, one per camera.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import cv2
import numpy as np

from agent.config import MotionConfig
from agent.detection.lighting import local_ncc, pattern_match, relit
from agent.detection.masks import detection_mask
from agent.detection.slow import SlowMovers

Box = tuple[float, float, float, float]

_KERNEL3 = np.ones((3, 3), np.uint8)
_BORDER = 2  # work pixels ignored at each edge
_GAP_S = 10.0  # a longer gap between analysed frames (camera reopened) starts calibration again
_FLAT = 10.0  # grey-level spread below which a patch has no pattern to compare
_RELIT_CORR = 0.0  # correlation with the background above which a still change is lighting
_SWEEP_AREA = 0.01  # moving blobs bigger than this fraction of the area are checked for beams


def _percentiles(img: np.ndarray, mask: np.ndarray | None, qs: tuple[float, ...]) -> list[float]:
    """Grey-level percentiles of a uint8 image from its histogram (much cheaper than a sort)."""
    cdf = np.cumsum(cv2.calcHist([img], [0], mask, [256], [0, 256]).ravel())
    return [float(v) for v in np.searchsorted(cdf, [cdf[-1] * q for q in qs])]


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


def _linear(img: np.ndarray, gain: float, offset: float) -> np.ndarray:
    """gain * img + offset, clipped to 0..255 (a lookup table: no wrap-around, no abs())."""
    table = np.clip(np.arange(256, dtype=np.float32) * gain + offset, 0, 255).astype(np.uint8)
    return cv2.LUT(img, table)


class MotionDetector(SlowMovers):
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
        valid = np.zeros((wh, ww), np.uint8)
        valid[_BORDER:-_BORDER, _BORDER:-_BORDER] = 255  # shake brings new content in at the edges
        self._valid = valid if zone is None else cv2.bitwise_and(valid, zone)
        self._zone_area = float(max(1, int(np.count_nonzero(self._valid))))
        self._threshold = threshold_for(cfg.sensitivity)
        self._min_area = max(2.0, min_area_fraction_for(cfg.sensitivity) * ww * wh)
        self.reset()

    def reset(self) -> None:
        """Forget the background and all history; the next frames calibrate again."""
        self._bg: np.ndarray | None = None
        self._prev: np.ndarray | None = None
        self._mask: np.ndarray | None = None
        self._last_changed: np.ndarray | None = None
        self._prev_boxes: list[Box] = []
        self._lo = 0.0
        self._hi = 255.0
        self._last_analysed: float | None = None
        self._last_t: float | None = None
        self._calibrate_until = -math.inf
        self._run_on = 0
        self._run_off = 0
        self._motion = False
        self._forget_slow()

    @property
    def mask(self) -> np.ndarray | None:
        """Pixels in motion in the last analysed frame, uint8 0/255 at the working size (for
        evaluation and debugging; boxes are what the event tracker uses)."""
        return self._mask

    def should_analyse(self, t: float) -> bool:
        """Rate cap: True if frame time t is at least 1/analysis_fps after the last analysed frame."""
        if self._last_analysed is None:
            return True
        # 5% slack so a 10 fps camera at a 5 fps cap keeps every other frame despite jitter.
        return t - self._last_analysed >= 0.95 / self.cfg.analysis_fps

    def analyse(self, gray: np.ndarray, t: float) -> MotionResult:
        """Compare one grayscale frame (h, w) uint8 with the background; update the background."""
        self._check(gray)
        self._last_analysed = t
        frame = self._prepare(gray)
        dt = 1.0 / self.cfg.analysis_fps if self._last_t is None else max(1e-3, t - self._last_t)
        self._last_t = t
        prev, self._prev = self._prev, frame
        if dt > _GAP_S:
            self._bg = None  # the camera was away (reopened, stalled): the scene may have changed
        if self._bg is None or prev is None:
            self._bg = frame.astype(np.float32)
            self._calibrate_until = t + self.cfg.calibration_s
            self._forget_slow()
            return self._result(t, 0.0, [], raw=False, calibrating=True)
        calibrating = t < self._calibrate_until
        frame_c = self._match_light(frame)
        changed = self._changed(frame_c, cv2.convertScaleAbs(self._bg))
        self._last_changed = changed
        changed_frac = float(np.count_nonzero(changed)) / self._zone_area
        if changed_frac > self.cfg.global_change_fraction:
            # Lighting, not motion: IR switch, street light, exposure jump. Relearn quickly.
            self._calibrate_until = t + self.cfg.calibration_s
            calibrating = True
        if calibrating:
            self._mask = None
            self._forget_slow()  # frames from before a light change cannot be compared with later ones
            cv2.accumulateWeighted(frame, self._bg, self._alpha(dt, self.cfg.calibration_tau_s))
            return self._result(t, 0.0, [], raw=False, calibrating=True)
        moving = cv2.threshold(cv2.absdiff(frame, prev), self._threshold, 255, cv2.THRESH_BINARY)[1]
        self._track_slow(t)
        boxes, area, still, lighting = self._blobs(changed, moving, frame_c)
        self._update_background(frame, changed, still, lighting, dt)
        score = min(1.0, area / self._zone_area)
        return self._result(t, score, boxes, raw=bool(boxes), calibrating=False)

    def _check(self, gray: np.ndarray) -> None:
        w, h = self.size
        if gray.dtype != np.uint8 or gray.shape[:2] != (h, w) or gray.ndim not in (2, 3):
            raise ValueError(
                f"motion: expected a {w}x{h} uint8 grayscale frame, got shape {gray.shape} {gray.dtype} "
                "(for a picamera2 YUV420 lores array pass the Y plane [:h, :w])"
            )

    # -- stages -------------------------------------------------------------------------------------

    def _prepare(self, gray: np.ndarray) -> np.ndarray:
        """Shrink, stretch contrast to the smoothed 4th/96th percentiles, blur."""
        if gray.ndim == 3:
            gray = cv2.cvtColor(gray, cv2.COLOR_BGR2GRAY)
        if (gray.shape[1], gray.shape[0]) != self.work:
            gray = cv2.resize(gray, self.work, interpolation=cv2.INTER_AREA)
        lo, hi = _percentiles(gray, self._zone, (0.04, 0.96))
        if self._bg is None:
            self._lo, self._hi = lo, hi
        else:
            k = self.cfg.contrast_alpha
            self._lo += k * (lo - self._lo)
            self._hi += k * (hi - self._hi)
        span = max(self._hi - self._lo, 16.0)
        if self.cfg.slow_window_s > 0:  # the slow-mover path works on unstretched levels
            self._raw = cv2.GaussianBlur(gray, (5, 5), 0)
            self._raw_span = span
        stretched = _linear(gray, 255.0 / span, -self._lo * 255.0 / span)
        return cv2.GaussianBlur(stretched, (5, 5), 0)

    def _match_light(self, frame: np.ndarray, ref: np.ndarray | None = None) -> np.ndarray:
        """Undo a global gain/offset change (cloud, exposure) by matching quartiles to the background
        (or to `ref`)."""
        bg = cv2.convertScaleAbs(self._bg) if ref is None else ref
        # Only where nothing was changing last time: a big lorry must not pass for a light change.
        quiet = self._valid if self._last_changed is None else cv2.subtract(self._valid, self._last_changed)
        if cv2.countNonZero(quiet) < 0.2 * self._zone_area:
            return frame
        f25, f50, f75 = _percentiles(frame, quiet, (0.25, 0.5, 0.75))
        b25, b50, b75 = _percentiles(bg, quiet, (0.25, 0.5, 0.75))
        gain = (b75 - b25) / (f75 - f25) if f75 - f25 >= 4 else 1.0
        gain = min(2.0, max(0.5, gain))
        offset = b50 - gain * f50
        if abs(gain - 1.0) < 0.02 and abs(offset) < 1.0:
            return frame
        return _linear(frame, gain, offset)

    def _changed(self, frame: np.ndarray, ref: np.ndarray, threshold: float | None = None) -> np.ndarray:
        """Binary change mask of frame against ref, tolerant of a 1 px shake (min/max envelope)."""
        above = cv2.subtract(frame, cv2.dilate(ref, _KERNEL3))
        below = cv2.subtract(cv2.erode(ref, _KERNEL3), frame)
        level = self._threshold if threshold is None else threshold
        _, changed = cv2.threshold(cv2.max(above, below), level, 255, cv2.THRESH_BINARY)
        changed = cv2.morphologyEx(changed, cv2.MORPH_OPEN, _KERNEL3)
        changed = cv2.bitwise_and(changed, self._valid)
        return cv2.dilate(changed, _KERNEL3)

    def _blobs(self, changed: np.ndarray, moving: np.ndarray, frame: np.ndarray
               ) -> tuple[list[Box], float, np.ndarray, np.ndarray]:
        """Boxes of big enough changed blobs. A blob counts if it also changed since the last frame
        or, when still, if it is not a lighting change (a new object, not the old scene brighter).
        Returns boxes, area, the still-object mask and the lighting mask (absorbed quickly)."""
        # Grana's block-based labelling: several times faster here than the default algorithm.
        n, labels, stats, _ = cv2.connectedComponentsWithStatsWithAlgorithm(
            changed, 8, cv2.CV_32S, cv2.CCL_GRANA
        )
        hits = np.bincount(labels[moving > 0], minlength=n)
        live = hits >= np.maximum(3, stats[:, cv2.CC_STAT_AREA] * 0.02)
        still, slowly = self._sort_blobs(labels, stats, live, frame)
        live[0] = still[0] = slowly[0] = False
        counted = live | still
        ww, wh = self.work
        boxes: list[Box] = []
        area = 0.0
        for i in np.flatnonzero(counted):
            x, y, w, h, a = stats[i]
            if a >= self._min_area:
                boxes.append((float(x / ww), float(y / wh), float(w / ww), float(h / wh)))
                area += float(a)
        lighting = np.where(counted[labels], 0, changed).astype(np.uint8)
        still_mask = np.where(still[labels], changed, 0).astype(np.uint8)
        self._mask = changed - lighting
        # Fast movers (not the slow ones): their pixels are no slow-mover evidence for a window.
        self._fast = np.where((live & ~slowly)[labels], changed, 0).astype(np.uint8)
        for box, a, blob in self._scene_movers(changed):
            boxes.append(box)
            area += a
            self._mask = cv2.bitwise_or(self._mask, blob)
        return boxes, area, still_mask, lighting

    def _sort_blobs(self, labels: np.ndarray, stats: np.ndarray, live: np.ndarray, frame: np.ndarray
                    ) -> tuple[np.ndarray, np.ndarray]:
        """Drop big moving blobs that are only the scene re-lit (in place in `live`), add slow movers
        to `live`; return which still blobs are new objects (the other still blobs are lighting)
        and which blobs are slow movers."""
        n = len(stats)
        still = np.zeros(n, bool)
        slowly = np.zeros(n, bool)
        bg = cv2.convertScaleAbs(self._bg)
        big = stats[:, cv2.CC_STAT_AREA] >= _SWEEP_AREA * self._zone_area
        big[0] = False
        ncc = textured = None
        if np.any(big & live):
            # Only over the big moving blobs' bounding box: the check is the costliest step.
            x0, y0 = stats[big & live, :2].min(axis=0)
            x1, y1 = (stats[big & live, :2] + stats[big & live, 2:4]).max(axis=0)
            ncc = np.zeros(labels.shape, np.float32)
            textured = np.zeros(labels.shape, bool)
            ncc[y0:y1, x0:x1], textured[y0:y1, x0:x1] = local_ncc(frame[y0:y1, x0:x1], bg[y0:y1, x0:x1])
        for i in range(1, n):
            if stats[i, cv2.CC_STAT_AREA] < self._min_area:
                continue
            x, y, w, h, _ = stats[i]
            win = (slice(y, y + h), slice(x, x + w))
            sel = labels[win] == i
            if live[i]:
                if big[i] and ncc is not None and textured is not None:
                    live[i] = not relit(ncc[win][sel], textured[win][sel])
            elif self._slow_mover(win, sel):
                live[i] = slowly[i] = True  # moving, only slowly: counts, joins the background slowly
            else:
                # Still: a new object only if there is a pattern on both sides and it changed.
                spread, corr = pattern_match(frame[win][sel], bg[win][sel])
                still[i] = spread >= _FLAT and corr <= _RELIT_CORR
        return still, slowly

    def _update_background(self, frame: np.ndarray, changed: np.ndarray, still: np.ndarray,
                           lighting: np.ndarray, dt: float) -> None:
        """Unchanged pixels and objects that stopped (a parked van) at the normal rate, lighting
        changes fast, moving things slowly so a passing car does not smear the background."""
        cfg = self.cfg
        normal = cv2.bitwise_or(cv2.bitwise_not(changed), still)
        cv2.accumulateWeighted(frame, self._bg, self._alpha(dt, cfg.background_tau_s), mask=normal)
        moving = cv2.subtract(cv2.subtract(changed, still), lighting)
        slow = self._alpha(dt, cfg.background_tau_s * cfg.moving_tau_factor)
        cv2.accumulateWeighted(frame, self._bg, slow, mask=moving)
        cv2.accumulateWeighted(frame, self._bg, self._alpha(dt, cfg.static_tau_s), mask=lighting)

    def _persists(self, boxes: list[Box]) -> bool:
        """True if some box is near one of the last frame's: a real object moves a bounded distance
        between analysed frames, rain streaks and noise specks turn up anywhere."""
        m = self.cfg.persistence_margin
        for x, y, w, h in boxes:
            for px, py, pw, ph in self._prev_boxes:
                if x - m <= px + pw and px - m <= x + w and y - m <= py + ph and py - m <= y + h:
                    return True
        return False

    def _result(self, t: float, score: float, boxes: list[Box], raw: bool, calibrating: bool) -> MotionResult:
        n = self.cfg.hysteresis_frames
        if raw and self._run_on and not self._motion and not self._persists(boxes):
            self._run_on = 0  # a new, unrelated blob: start counting again
        self._prev_boxes = boxes
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
