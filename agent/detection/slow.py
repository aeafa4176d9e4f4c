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
_SCENE_TAU = 8.0  # the scene background's time constant, in slow_window_s


class SlowMovers:
    """The slow-mover half of MotionDetector: state per camera, reset with the detector."""

    cfg: MotionConfig
    work: tuple[int, int]
    _mask: np.ndarray | None
    _fast: np.ndarray | None
    _min_area: float
    _threshold: float
    _valid: np.ndarray

    def _changed(self, frame: np.ndarray, ref: np.ndarray) -> np.ndarray: ...  # MotionDetector's
    def _match_light(self, frame: np.ndarray, ref: np.ndarray | None = None) -> np.ndarray: ...

    @staticmethod
    def _alpha(dt: float, tau: float) -> float:
        return 1.0 - math.exp(-dt / tau)

    def _forget_slow(self) -> None:
        """Drop the slow-mover history (after a start, a gap or a global light change)."""
        # (start t, mean frame, pixels clipped in any frame of it, pixels that jumped in it) per block
        self._blocks: deque[tuple[float, np.ndarray, np.ndarray, np.ndarray]] = deque()
        self._acc: np.ndarray | None = None
        self._acc_clip: np.ndarray | None = None
        self._acc_jump: np.ndarray | None = None
        self._acc_fast: np.ndarray | None = None
        self._fast = None  # pixels of fast (frame-to-frame) movers in the last analysed frame
        self._acc_n = 0
        self._acc_t = 0.0
        self._slow: np.ndarray | None = None  # changed since slow_window_s back, or None
        self._slow_pair: tuple[np.ndarray, np.ndarray] | None = None  # (recent, old matched to it)
        self._scene: np.ndarray | None = None  # a much slower background, updated once a block
        self._off_scene: np.ndarray | None = None  # the newest block's change against it

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
        old = self._match_light(old, recent)
        unsure = cv2.bitwise_or(recent_clip, old_clip)
        for _t, _f, _c, jumps in self._blocks:  # the old block's too: traffic that has just left
            unsure = cv2.bitwise_or(unsure, jumps)
        self._slow = cv2.subtract(self._changed(recent, old), cv2.dilate(unsure, _KERNEL3))
        self._slow_pair = (recent, old)

    def _track_scene(self, recent: np.ndarray, clipped: np.ndarray, jumped: np.ndarray,
                     fast: np.ndarray, block_s: float) -> None:
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
        busy = fast if self._mask is None else cv2.bitwise_or(fast, cv2.dilate(self._mask, _KERNEL3))
        free = cv2.bitwise_not(busy)  # never where anything was counted during the block
        tau = _SCENE_TAU * self.cfg.slow_window_s
        cv2.accumulateWeighted(recent, self._scene, self._alpha(block_s, tau), mask=free)
        jumped = cv2.bitwise_and(cv2.dilate(jumped, _KERNEL3), free)
        cv2.accumulateWeighted(recent, self._scene, 1.0, mask=jumped)

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
        # Only what also differs from the slow scene: the background's own after-image of passing
        # traffic (the newest block is back to the scene) is not a slow mover.
        changed = sel & (self._slow[win] > 0) & (self._off_scene[win] > 0)
        hits = int(np.count_nonzero(changed))
        if hits < max(0.5 * self._min_area, _SLOW_HITS * int(np.count_nonzero(sel))):
            return False
        recent, old = self._slow_pair
        ncc, textured = local_ncc(recent[win], old[win])
        return not relit(ncc[changed], textured[changed])
