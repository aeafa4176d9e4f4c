"""Motion detector: small grayscale frames in, score, boxes and a debounced motion flag out.

Sits between the camera source (Frame.gray) and the event tracker; pure, no I/O, one per camera.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field

import cv2
import numpy as np

from agent.config import MotionConfig
from agent.detection.masks import detection_mask

Box = tuple[float, float, float, float]

_KERNEL3 = np.ones((3, 3), np.uint8)
_BORDER = 2  # work pixels ignored at each edge
_GAP_S = 10.0  # a longer gap between analysed frames (camera reopened) starts calibration again
_FLAT = 10.0  # grey-level spread below which a patch has no pattern to compare
_RELIT_CORR = 0.0  # correlation with the background above which a still change is lighting
_SWEEP_CORR = 0.6  # local correlation above which a moving change is a beam of light, not a thing
_FLAT_LOCAL = 4.0  # grey-level spread in a 7x7 window below which it has no pattern
_SWEEP_AREA = 0.01  # moving blobs bigger than this fraction of the area are checked for beams
_SLOW_BLOCK_S = 1.0  # slow movers: frames are averaged over blocks this long ...
_SLOW_HITS = 0.05  # ... and a still blob with this fraction changed since the block slow_window_s back moves
_SCENE_TAU = 8.0  # the scene background's time constant, in slow_window_s


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


def _pattern_match(frame_px: np.ndarray, bg_px: np.ndarray) -> tuple[float, float]:
    """(weaker grey-level spread of the two, correlation) of a blob's pixels now and in the
    background: a re-lit scene keeps its pattern (high correlation), a new object does not.
    Pixels clipped white or black now carry no pattern and are left out, unless most are."""
    f = frame_px.astype(np.float32)
    b = bg_px.astype(np.float32)
    keep = (frame_px > 4) & (frame_px < 251)
    if np.count_nonzero(keep) >= 0.5 * keep.size:
        f, b = f[keep], b[keep]
    fs, bs = float(f.std()), float(b.std())
    if min(fs, bs) < 1e-3:
        return min(fs, bs), 0.0
    return min(fs, bs), float(((f - f.mean()) * (b - b.mean())).mean()) / (fs * bs)


def _relit(ncc: np.ndarray, textured: np.ndarray) -> bool:
    """A moving blob is a beam of light (headlights sweeping) if most of it has texture and that
    texture still matches the background."""
    n = np.count_nonzero(textured)
    return n >= 0.15 * textured.size and np.count_nonzero(ncc[textured] > _SWEEP_CORR) >= 0.6 * n


def _local_ncc(frame: np.ndarray, bg: np.ndarray, k: int = 7) -> tuple[np.ndarray, np.ndarray]:
    """Normalised cross-correlation of frame and background in k x k windows, and where both have
    enough texture for it to mean anything. Illumination changes smoothly across a beam of light,
    so re-lit surfaces still correlate locally even where a whole blob does not."""
    f = frame.astype(np.float32)
    b = bg.astype(np.float32)
    size = (k, k)
    mf, mb = cv2.blur(f, size), cv2.blur(b, size)
    var_f = cv2.blur(f * f, size) - mf * mf
    var_b = cv2.blur(b * b, size) - mb * mb
    cov = cv2.blur(f * b, size) - mf * mb
    textured = (var_f > _FLAT_LOCAL**2) & (var_b > _FLAT_LOCAL**2)
    ncc = cov / np.sqrt(np.maximum(var_f, 1.0) * np.maximum(var_b, 1.0))
    return ncc, textured


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

    def _forget_slow(self) -> None:
        """Drop the slow-mover history (after a start, a gap or a global light change)."""
        # (start t, mean frame, pixels clipped in any frame of it, pixels that jumped in it) per block
        self._blocks: deque[tuple[float, np.ndarray, np.ndarray, np.ndarray]] = deque()
        self._acc: np.ndarray | None = None
        self._acc_clip: np.ndarray | None = None
        self._acc_jump: np.ndarray | None = None
        self._acc_n = 0
        self._acc_t = 0.0
        self._slow: np.ndarray | None = None  # changed since slow_window_s back, or None
        self._slow_pair: tuple[np.ndarray, np.ndarray] | None = None  # (recent, old matched to it)
        self._scene: np.ndarray | None = None  # a much slower background, updated once a block
        self._off_scene: np.ndarray | None = None  # the newest block's change against it

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
        self._track_slow(frame_c, frame, moving, t)
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

    def _track_slow(self, frame: np.ndarray, prepared: np.ndarray, moving: np.ndarray, t: float) -> None:
        """Slow movers (a person crawling at 2 px/s at 480 px width): so slow that they do not differ
        from the last frame and the background takes them in. Frames are averaged over 1 s blocks
        (noise falls by half) and the newest block is compared with the one slow_window_s before,
        light-matched to it and with the same shake-tolerant test as the background: what changed
        between the two is kept as the slow mask until the next block. Pixels clipped black or white
        by the contrast stretch in either block are left out: they carry no trustworthy level (the
        stretch lags a brightening cloud and whole walls clip). So are pixels that jumped from one
        frame to the next in between (a solid patch, not rain): a slow mover never jumps, while
        a light switched on, an IR switch or a passing car (caught as moving anyway) do."""
        window = self.cfg.slow_window_s
        if window <= 0:
            return
        clipped = cv2.bitwise_or(cv2.compare(prepared, 250, cv2.CMP_GE), cv2.compare(prepared, 5, cv2.CMP_LE))
        jumped = cv2.morphologyEx(moving, cv2.MORPH_OPEN, _KERNEL3)
        if self._acc is None or self._acc_clip is None or self._acc_jump is None:
            self._acc, self._acc_n, self._acc_t = frame.astype(np.float32), 1, t
            self._acc_clip, self._acc_jump = clipped, jumped
        else:
            cv2.accumulate(frame, self._acc)
            self._acc_clip = cv2.bitwise_or(self._acc_clip, clipped)
            self._acc_jump = cv2.bitwise_or(self._acc_jump, jumped)
            self._acc_n += 1
        if t - self._acc_t < _SLOW_BLOCK_S * 0.95:
            return
        block_s = t - self._acc_t
        recent = cv2.convertScaleAbs(self._acc, alpha=1.0 / self._acc_n)
        recent_clip = cv2.dilate(self._acc_clip, _KERNEL3)
        self._blocks.append((self._acc_t, recent, recent_clip, self._acc_jump))
        self._acc = self._acc_clip = self._acc_jump = None
        newest_t = self._blocks[-1][0]
        self._track_scene(recent, recent_clip, self._blocks[-1][3], block_s)
        while len(self._blocks) > 2 and newest_t - self._blocks[1][0] >= window:
            self._blocks.popleft()
        old_t, old, old_clip, _ = self._blocks[0]
        if newest_t - old_t < window:
            return
        old = self._match_light(old, recent)
        unsure = cv2.bitwise_or(recent_clip, old_clip)
        for _t, _f, _c, jumps in list(self._blocks)[1:]:
            unsure = cv2.bitwise_or(unsure, jumps)
        self._slow = cv2.subtract(self._changed(recent, old), cv2.dilate(unsure, _KERNEL3))
        self._slow_pair = (recent, old)

    def _track_scene(self, recent: np.ndarray, clipped: np.ndarray, jumped: np.ndarray,
                     block_s: float) -> None:
        """The scene: a background _SCENE_TAU times slower than slow_window_s, left alone where motion
        was counted. The background proper takes in a flat-coloured crawler within seconds; the
        scene does not, so the crawler stays a blob (a passing car is gone from both). What jumped
        from one frame to the next in the block (a light switched on, an IR switch) is taken into
        the scene at once: a slow mover never jumps."""
        if self._scene is None:
            self._scene = recent.astype(np.float32)
            return
        scene = cv2.convertScaleAbs(self._scene)
        self._off_scene = cv2.subtract(self._changed(self._match_light(recent, scene), scene), clipped)
        free = np.full(recent.shape, 255, np.uint8)
        if self._mask is not None:
            free = cv2.bitwise_not(cv2.dilate(self._mask, _KERNEL3))
        tau = _SCENE_TAU * self.cfg.slow_window_s
        cv2.accumulateWeighted(recent, self._scene, self._alpha(block_s, tau), mask=free)
        jumped = cv2.bitwise_and(cv2.dilate(jumped, _KERNEL3), free)
        cv2.accumulateWeighted(recent, self._scene, 1.0, mask=jumped)

    def _changed(self, frame: np.ndarray, ref: np.ndarray) -> np.ndarray:
        """Binary change mask of frame against ref, tolerant of a 1 px shake (min/max envelope)."""
        above = cv2.subtract(frame, cv2.dilate(ref, _KERNEL3))
        below = cv2.subtract(cv2.erode(ref, _KERNEL3), frame)
        _, changed = cv2.threshold(cv2.max(above, below), self._threshold, 255, cv2.THRESH_BINARY)
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
        for box, a, blob in self._scene_movers(changed):
            boxes.append(box)
            area += a
            self._mask = cv2.bitwise_or(self._mask, blob)
        return boxes, area, still_mask, lighting

    def _scene_movers(self, changed: np.ndarray) -> list[tuple[Box, float, np.ndarray]]:
        """Slow movers the background has already taken in (a flat-coloured crawler over a flat
        lawn is gone from it in seconds): blobs that differ from the slow scene but not from the
        background count only when the slow-mover test says they moved."""
        if self._off_scene is None or self._slow is None:
            return []
        extra = cv2.subtract(self._off_scene, cv2.dilate(changed, _KERNEL3))
        n, labels, stats, _ = cv2.connectedComponentsWithStatsWithAlgorithm(
            extra, 8, cv2.CV_32S, cv2.CCL_GRANA
        )
        ww, wh = self.work
        out = []
        for i in range(1, n):
            x, y, w, h, a = stats[i]
            if a < self._min_area:
                continue
            win = (slice(y, y + h), slice(x, x + w))
            sel = labels[win] == i
            if self._slow_mover(win, sel):
                blob = np.zeros_like(extra)
                blob[win][sel] = 255
                out.append(((float(x / ww), float(y / wh), float(w / ww), float(h / wh)), float(a), blob))
        return out

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
            ncc[y0:y1, x0:x1], textured[y0:y1, x0:x1] = _local_ncc(frame[y0:y1, x0:x1], bg[y0:y1, x0:x1])
        for i in range(1, n):
            if stats[i, cv2.CC_STAT_AREA] < self._min_area:
                continue
            x, y, w, h, _ = stats[i]
            win = (slice(y, y + h), slice(x, x + w))
            sel = labels[win] == i
            if live[i]:
                if big[i] and ncc is not None and textured is not None:
                    live[i] = not _relit(ncc[win][sel], textured[win][sel])
            elif self._slow_mover(win, sel):
                live[i] = slowly[i] = True  # moving, only slowly: counts, joins the background slowly
            else:
                # Still: a new object only if there is a pattern on both sides and it changed.
                spread, corr = _pattern_match(frame[win][sel], bg[win][sel])
                still[i] = spread >= _FLAT and corr <= _RELIT_CORR
        return still, slowly

    def _slow_mover(self, win: tuple[slice, slice], sel: np.ndarray) -> bool:
        """A still blob moves slowly if enough of it changed over the last slow_window_s (the slow
        mask) and that change is not the scene re-lit: where it changed, its local texture must not
        keep matching the earlier frame (the beam test of fast blobs)."""
        if self._slow is None or self._slow_pair is None or self._off_scene is None:
            return False
        # Only what also differs from the slow scene: the background's own after-image of passing
        # traffic (the newest block is back to the scene) is not a slow mover.
        changed = sel & (self._slow[win] > 0) & (self._off_scene[win] > 0)
        hits = int(np.count_nonzero(changed))
        if hits < max(0.5 * self._min_area, _SLOW_HITS * int(np.count_nonzero(sel))):
            return False
        recent, old = self._slow_pair
        ncc, textured = _local_ncc(recent[win], old[win])
        return not _relit(ncc[changed], textured[changed])

    def _alpha(self, dt: float, tau: float) -> float:
        return 1.0 - math.exp(-dt / tau)

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
