"""Slow movers for the motion detector: a figure crawling at 2 px/s, which the background absorbs.

Mixed into agent.detection.motion.MotionDetector (it uses the detector's background, thresholds and
masks); 1 s block averages compared across slow_window_s plus a much slower scene background.
"""

from __future__ import annotations

import math
from collections import deque
from typing import TYPE_CHECKING

import cv2
import numpy as np

from agent.detection.lighting import local_ncc, relit

if TYPE_CHECKING:
    from agent.config import MotionConfig

Box = tuple[float, float, float, float]
_KERNEL3 = np.ones((3, 3), np.uint8)
_SLOW_BLOCK_S = 1.0  # slow movers: frames are averaged over blocks this long ...
_SLOW_HITS = 0.05  # ... and a still blob with this fraction changed since the block slow_window_s back moves
_SLOW_LEVEL = 0.5  # of the frame threshold, between 1 s block averages (noise halved)
_HOLD = 0.5  # a confirmed slow mover is held this many slow_window_s ...
_RELIT_JUMP = 0.2  # more of the area than this jumping in one frame is a light change: start afresh
_HOLD_MARGIN = 2  # ... where a blob still differing from the scene is within this many work pixels of it
_SCENE_TAU = 8.0  # the scene background's time constant, in slow_window_s
_FIT_ROUNDS = 3  # least-squares light fits between blocks: the first, and refits without outliers
_FIT_GAIN = 4.0  # largest light change (as a gain either way) matched between blocks


class SlowMovers:
    """The slow-mover half of MotionDetector: state per camera, reset with the detector."""

    cfg: MotionConfig
    work: tuple[int, int]
    _mask: np.ndarray | None
    _fast: np.ndarray | None
    _min_area: float
    _threshold: float
    _valid: np.ndarray
    _zone_area: float
    _raw: np.ndarray  # the analysed frame shrunk and blurred, not stretched (set by _prepare)
    _raw_span: float  # grey levels the contrast stretch spreads over 0..255

    def _changed(self, frame: np.ndarray, ref: np.ndarray, threshold: float | None = None
                 ) -> np.ndarray: ...  # MotionDetector's
    _last_changed: np.ndarray | None

    @staticmethod
    def _alpha(dt: float, tau: float) -> float:
        return 1.0 - math.exp(-dt / tau)

    def _slow_level(self) -> float:
        """Change threshold between 1 s block averages: lower than between frames (averaging
        five frames halves the noise), so a dark figure on a dark lawn still shows."""
        return _SLOW_LEVEL * self._threshold * self._raw_span / 255.0

    def _light_fit(self, frame: np.ndarray, ref: np.ndarray, exclude: np.ndarray | None = None
                   ) -> tuple[float, float]:
        """Gain and offset that best map frame onto ref (least squares, refitted without the pixels
        it then misses by more than the slow threshold: the mover itself), over pixels that were not
        changing, are not clipped and are not in `exclude`. Quartiles, as the frame path uses, come
        in whole grey levels: in fog or under a deep cloud the unstretched blocks span a few tens of
        levels, a one-level error is a 5-10 % gain error, and the brightest lines of the scene (road
        markings) then differ by more than the slow threshold: a false slow mover."""
        quiet = self._valid if self._last_changed is None else cv2.subtract(self._valid, self._last_changed)
        if exclude is not None:
            quiet = cv2.subtract(quiet, exclude)
        ok = (quiet > 0) & (frame > 5) & (frame < 250) & (ref > 5) & (ref < 250)
        f = frame[ok].astype(np.float32)
        r = ref[ok].astype(np.float32)
        if f.size < 0.2 * self._zone_area:
            return 1.0, 0.0
        gain, offset = 1.0, 0.0
        for _ in range(int(_FIT_ROUNDS)):
            fm, rm = float(f.mean()), float(r.mean())
            var = float(((f - fm) ** 2).mean())
            gain = float(((f - fm) * (r - rm)).mean()) / var if var >= 4.0 else 1.0
            gain = min(_FIT_GAIN, max(1.0 / _FIT_GAIN, gain))
            offset = rm - gain * fm
            inside = np.abs(r - (gain * f + offset)) < self._slow_level()
            if np.count_nonzero(inside) < 0.5 * f.size:
                break
            f, r = f[inside], r[inside]
        return gain, offset

    @staticmethod
    def _relight(frame: np.ndarray, gain: float, offset: float) -> np.ndarray:
        """gain * frame + offset, rounded and clipped to 0..255 (a lookup table)."""
        if abs(gain - 1.0) < 0.002 and abs(offset) < 0.2:
            return frame
        table = np.clip(np.arange(256, dtype=np.float32) * gain + offset + 0.5, 0, 255).astype(np.uint8)
        return cv2.LUT(frame, table)

    def _forget_slow(self) -> None:
        """Drop the slow-mover history (after a start, a gap or a global light change)."""
        # (start t, mean frame, pixels clipped in any frame of it, pixels that jumped in it) per block
        self._blocks: deque[tuple[float, np.ndarray, np.ndarray, np.ndarray]] = deque()
        self._acc: np.ndarray | None = None
        self._acc_clip: np.ndarray | None = None
        self._acc_jump: np.ndarray | None = None
        self._acc_fast: np.ndarray | None = None
        self._fast = None  # pixels of fast (frame-to-frame) movers in the last analysed frame
        self._raw_prev: np.ndarray | None = None
        self._acc_n = 0
        self._acc_t = 0.0
        self._slow: np.ndarray | None = None  # changed since slow_window_s back, or None
        self._slow_pair: tuple[np.ndarray, np.ndarray] | None = None  # (recent, old matched to it)
        self._scene: np.ndarray | None = None  # a much slower background, updated once a block
        self._off_scene: np.ndarray | None = None  # the newest block's change against it
        self._reseed: np.ndarray | None = None  # jumped lately: the scene is relearnt there once steady
        self._steady_s: np.ndarray | None = None  # seconds since each pixel last jumped
        self._held: list[tuple[int, int, int, int, float]] = []  # (x0, y0, x1, y1, until t) confirmed
        self._cands: list[tuple[int, int, int, int, int]] = []  # (x0, y0, x1, y1, comparison no.)
        self._compared = 0  # block comparisons made
        self._now = 0.0

    def _track_slow(self, t: float) -> None:
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
        self._now = t
        self._held = [h for h in self._held if h[4] >= t]
        frame, prev = self._raw, self._raw_prev
        self._raw_prev = frame
        if prev is None:
            return
        clipped = cv2.bitwise_or(cv2.compare(frame, 250, cv2.CMP_GE), cv2.compare(frame, 5, cv2.CMP_LE))
        # Jumped: changed from the last frame by the slow-mover threshold (lower than the frame one).
        moving = cv2.threshold(cv2.absdiff(frame, prev), self._slow_level(), 255, cv2.THRESH_BINARY)[1]
        jumped = cv2.morphologyEx(moving, cv2.MORPH_OPEN, _KERNEL3)
        if cv2.countNonZero(jumped) > _RELIT_JUMP * self._zone_area:
            # A light change (an IR switch, lights on) that the global guard let through: levels
            # on either side of it cannot be compared at the slow threshold. Drop the blocks and
            # hold the whole scene unknown until it is steady again (not relearnt from this frame:
            # it may be a lorry).
            self._blocks.clear()
            self._slow = self._slow_pair = None
            self._held = []
            self._acc = self._acc_clip = self._acc_jump = self._acc_fast = None
            if self._reseed is not None and self._steady_s is not None:
                self._reseed[:] = 255
                self._steady_s[:] = 0.0
            return
        fast = self._fast if self._fast is not None else np.zeros_like(jumped)
        if self._acc is None or self._acc_clip is None or self._acc_jump is None or self._acc_fast is None:
            self._acc, self._acc_n, self._acc_t = frame.astype(np.float32), 1, t
            self._acc_clip, self._acc_jump, self._acc_fast = clipped, jumped, fast
        else:
            cv2.accumulate(frame, self._acc)
            self._acc_clip = cv2.bitwise_or(self._acc_clip, clipped)
            self._acc_jump = cv2.bitwise_or(self._acc_jump, jumped)
            self._acc_fast = cv2.bitwise_or(self._acc_fast, fast)
            self._acc_n += 1
        if t - self._acc_t < _SLOW_BLOCK_S * 0.95:
            return
        block_s = t - self._acc_t
        recent = cv2.convertScaleAbs(self._acc, alpha=1.0 / self._acc_n)
        recent_clip = cv2.dilate(self._acc_clip, _KERNEL3)
        fast_union = cv2.dilate(self._acc_fast, _KERNEL3)
        self._blocks.append((self._acc_t, recent, recent_clip, cv2.bitwise_or(self._acc_jump, fast_union)))
        self._track_scene(recent, recent_clip, self._acc_jump, fast_union, block_s)
        self._acc = self._acc_clip = self._acc_jump = self._acc_fast = None
        newest_t = self._blocks[-1][0]
        while len(self._blocks) > 2 and newest_t - self._blocks[1][0] >= window:
            self._blocks.popleft()
        old_t, old, old_clip, _ = self._blocks[0]
        if newest_t - old_t < window:
            return
        old = self._relight(old, *self._light_fit(old, recent))
        unsure = cv2.bitwise_or(recent_clip, old_clip)
        for _t, _f, _c, jumps in self._blocks:  # the old block's too: traffic that has just left
            unsure = cv2.bitwise_or(unsure, jumps)
        changed = self._changed(recent, old, self._slow_level())
        self._slow = cv2.subtract(changed, cv2.dilate(unsure, _KERNEL3))
        self._slow_pair = (recent, old)
        self._compared += 1
        self._cands = [c for c in self._cands if c[4] >= self._compared - 1]

    def _track_scene(self, recent: np.ndarray, clipped: np.ndarray, jumped: np.ndarray,
                     fast: np.ndarray, block_s: float) -> None:
        """The scene: a background _SCENE_TAU times slower than slow_window_s, never updated where
        motion was counted during the block. The background proper takes in a flat-coloured crawler
        within seconds; the scene does not, so the crawler stays a blob, and a slow mover counts
        only while it is present, i.e. differs from the scene. Where something jumped from one
        frame to the next (a car, a light switched on, an IR switch, a clock overlay) the scene is
        unknown, so nothing there is present, until it has stayed steady for a whole window; then
        it is relearnt at once. A transient never settles and never gets into the scene."""
        if self._scene is None or self._reseed is None or self._steady_s is None:
            self._scene = recent.astype(np.float32)
            self._reseed = np.zeros(recent.shape, np.uint8)
            self._steady_s = np.zeros(recent.shape, np.float32)
            return
        busy = fast if self._mask is None else cv2.bitwise_or(fast, cv2.dilate(self._mask, _KERNEL3))
        free = cv2.bitwise_not(busy)
        jumped = cv2.dilate(jumped, _KERNEL3)
        # The scene is kept in its own light: the block is mapped onto it before it is learnt, so
        # spots relearnt at different times of a passing cloud still make one picture (no patchwork
        # that no single light change explains), and compared with the scene mapped onto the block.
        scene = cv2.convertScaleAbs(self._scene)
        gain, offset = self._light_fit(scene, recent, exclude=self._reseed)
        lit = (recent.astype(np.float32) - offset) / gain
        self._steady_s += block_s
        self._steady_s[jumped > 0] = 0.0
        settled = cv2.compare(self._steady_s, self.cfg.slow_window_s, cv2.CMP_GE)
        settled = cv2.bitwise_and(cv2.bitwise_and(self._reseed, settled), free)
        cv2.accumulateWeighted(lit, self._scene, 1.0, mask=settled)
        self._reseed = cv2.bitwise_or(cv2.subtract(self._reseed, settled), jumped)
        scene = self._relight(cv2.convertScaleAbs(self._scene), gain, offset)
        off = self._changed(recent, scene, self._slow_level())
        self._off_scene = cv2.subtract(off, cv2.bitwise_or(clipped, self._reseed))
        tau = _SCENE_TAU * self.cfg.slow_window_s
        cv2.accumulateWeighted(lit, self._scene, self._alpha(block_s, tau),
                               mask=cv2.subtract(free, self._reseed))

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

    def _slow_mover(self, win: tuple[slice, slice], sel: np.ndarray) -> bool:
        """A still blob moves slowly if enough of it changed over the last slow_window_s (the slow
        mask) and that change is not the scene re-lit: where it changed, its local texture must not
        keep matching the earlier frame (the beam test of fast blobs)."""
        if self._slow is None or self._slow_pair is None or self._off_scene is None:
            return False
        # Present: enough of the blob differs from the slow scene now. Neither the background's
        # after-image of traffic that has left nor a figure that has walked off is.
        present = sel & (self._off_scene[win] > 0)
        if self._acc_jump is not None:  # and not what jumped since the last block (an IR switch)
            present &= self._acc_jump[win] == 0
        if np.count_nonzero(present) < 0.5 * self._min_area:
            return False
        changed = present & (self._slow[win] > 0)
        hits = int(np.count_nonzero(changed))
        y, x = win[0].start, win[1].start
        box = (x, y, x + sel.shape[1], y + sel.shape[0])
        if hits >= max(0.5 * self._min_area, _SLOW_HITS * int(np.count_nonzero(sel))):
            recent, old = self._slow_pair
            ncc, textured = local_ncc(recent[win], old[win])
            if not relit(ncc[changed], textured[changed]):
                # Start only on evidence here in two block comparisons running (a one-off, such as
                # the edge of a window sliding past a light change, is not enough).
                m = _HOLD_MARGIN
                again = any(box[0] - m <= c[2] and c[0] - m <= box[2] and box[1] - m <= c[3]
                            and c[1] - m <= box[3] and c[4] == self._compared - 1 for c in self._cands)
                self._cands.append((*box, self._compared))
                if again:
                    self._held.append((*box, self._now + _HOLD * self.cfg.slow_window_s))
                    return True
        # Hysteresis: a slow mover confirmed here lately stays one while it is present, so a block
        # that happens to show too little of its edge does not break the event.
        m = _HOLD_MARGIN
        return any(box[0] - m <= h[2] and h[0] - m <= box[2] and box[1] - m <= h[3] and h[1] - m <= box[3]
                   for h in self._held)
