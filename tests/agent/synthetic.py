"""Synthetic no-motion clips built from a still of real footage, for motion and event tests.

Each generator yields grayscale uint8 frames of the still's size: nothing moves in them, only the
nuisances that fool street-camera detectors (noise, clouds, light steps, IR switch, rain, shake).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np

DATA = Path(__file__).resolve().parents[2] / ".." / "shared" / "data"

# A nuisance maps (frame number, BGR or grayscale uint8 frame) -> grayscale uint8 frame. Applied to
# a still it makes a no-motion clip; applied to real footage it puts the same weather on real motion.
Nuisance = Callable[[int, np.ndarray], np.ndarray]


def read_frames(path: Path, size: tuple[int, int] = (320, 240), step: int = 1, limit: int | None = None,
                gray: bool = True) -> list[np.ndarray]:
    """Decode a video with OpenCV into frames of `size` (every `step`-th, at most `limit`)."""
    cap = cv2.VideoCapture(str(path))
    frames: list[np.ndarray] = []
    i = 0
    try:
        while limit is None or len(frames) < limit:
            ok, frame = cap.read()
            if not ok:
                break
            if i % step == 0:
                if (frame.shape[1], frame.shape[0]) != size:
                    frame = cv2.resize(frame, size, interpolation=cv2.INTER_AREA)
                frames.append(cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY) if gray else frame)
            i += 1
    finally:
        cap.release()
    return frames


def still_bgr(path: Path, index: int = 0, size: tuple[int, int] = (320, 240)) -> np.ndarray:
    """One colour frame of a real clip: the scene the nuisance clips are built on."""
    frames = read_frames(path, size, limit=index + 1, gray=False)
    if len(frames) <= index:
        raise ValueError(f"{path}: fewer than {index + 1} frames")
    return frames[index]


def _gray(bgr: np.ndarray) -> np.ndarray:
    gray = cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY) if bgr.ndim == 3 else bgr
    return gray.astype(np.float32)


def _out(img: np.ndarray) -> np.ndarray:
    return np.clip(img, 0, 255).astype(np.uint8)


def sensor_noise(n: int, seed: int = 0, gain: float = 0.35, sigma: float = 7.0) -> Nuisance:
    """Night: the scene darkened to `gain` of its brightness, with fresh Gaussian noise per frame."""
    rng = np.random.default_rng(seed)
    return lambda i, img: _out(_gray(img) * gain + rng.normal(0.0, sigma, img.shape[:2]))


def cloud_ramp(n: int, seed: int = 0, depth: float = 0.45, sigma: float = 2.0) -> Nuisance:
    """A cloud passes every n frames: brightness eases down by `depth` and back up, mild noise."""
    rng = np.random.default_rng(seed)

    def apply(i: int, img: np.ndarray) -> np.ndarray:
        k = 1.0 - depth * np.sin(np.pi * (i % n) / max(1, n - 1)) ** 2
        return _out(_gray(img) * k + rng.normal(0.0, sigma, img.shape[:2]))

    return apply


def light_step(n: int, seed: int = 0, gain: float = 1.5, offset: float = 25.0, sigma: float = 2.0
               ) -> Nuisance:
    """A street light or exposure jump: brightness steps to gain * v + offset halfway through each
    n frames (and back at the end of them)."""
    rng = np.random.default_rng(seed)

    def apply(i: int, img: np.ndarray) -> np.ndarray:
        lit = (i % n) >= n // 2
        g = _gray(img) * gain + offset if lit else _gray(img)
        return _out(g + rng.normal(0.0, sigma, img.shape[:2]))

    return apply


def ir_switch(n: int, seed: int = 0, sigma: float = 2.0) -> Nuisance:
    """Day/night IR cut-filter switch halfway through each n frames: colour luma before; after it
    the camera sees near-infrared, where foliage and red surfaces are bright: a brighter,
    re-weighted grayscale image. Needs colour (BGR) frames."""
    rng = np.random.default_rng(seed)

    def apply(i: int, img: np.ndarray) -> np.ndarray:
        if img.ndim != 3:
            raise ValueError("ir_switch needs colour frames")
        if (i % n) < n // 2:
            g = _gray(img)
        else:
            b, gr, r = (img[..., c].astype(np.float32) for c in range(3))
            g = (0.65 * r + 0.3 * gr + 0.05 * b) * 1.3 + 20.0
        return _out(g + rng.normal(0.0, sigma, img.shape[:2]))

    return apply


def rain(n: int, seed: int = 0, drops: int = 120, sigma: float = 2.0) -> Nuisance:
    """Heavy rain: fresh short slanted bright streaks all over every frame (motion-blurred drops)."""
    rng = np.random.default_rng(seed)

    def apply(i: int, img: np.ndarray) -> np.ndarray:
        base = _gray(img)
        h, w = base.shape
        streaks = np.zeros_like(base)
        xs, ys = rng.integers(0, w, drops), rng.integers(0, h, drops)
        lengths, levels = rng.integers(6, 18, drops), rng.uniform(30, 70, drops)
        for x, y, ln, lv in zip(xs, ys, lengths, levels, strict=True):
            cv2.line(streaks, (int(x), int(y)), (int(x + ln // 4), int(y + ln)), float(lv), 1)
        return _out(base + streaks + rng.normal(0.0, sigma, base.shape))

    return apply


def jitter(n: int, seed: int = 0, max_px: float = 2.0, sigma: float = 2.0) -> Nuisance:
    """Camera shake on a pole: each frame shifted by up to max_px (sub-pixel) in x and y."""
    rng = np.random.default_rng(seed)

    def apply(i: int, img: np.ndarray) -> np.ndarray:
        base = _gray(img)
        h, w = base.shape
        dx, dy = rng.uniform(-max_px, max_px, 2)
        m = np.float32([[1, 0, dx], [0, 1, dy]])
        moved = cv2.warpAffine(base, m, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
        return _out(moved + rng.normal(0.0, sigma, base.shape))

    return apply


def headlights(n: int, seed: int = 0, gain: float = 0.3, boost: float = 2.5, sweep: int = 15,
               sigma: float = 3.0) -> Nuisance:
    """Night, and a car's headlights sweep across the scene halfway through every n frames (over
    `sweep` frames, from beyond the left edge to beyond the right): the scene itself is re-lit."""
    rng = np.random.default_rng(seed)

    def apply(i: int, img: np.ndarray) -> np.ndarray:
        base = _gray(img) * gain
        h, w = base.shape
        k = i % n - n // 2
        if 0 <= k < sweep:
            cx = (-0.3 + 1.6 * k / max(1, sweep - 1)) * w
            xs = np.arange(w, dtype=np.float32)
            beam = np.exp(-0.5 * ((xs - cx) / (0.2 * w)) ** 2)[None, :]
            rows = np.clip((np.arange(h, dtype=np.float32)[:, None] - 0.3 * h) / (0.2 * h), 0, 1)
            base = base * (1.0 + boost * beam * rows)
        return _out(base + rng.normal(0.0, sigma, base.shape))

    return apply


def fog(n: int, seed: int = 0, density: float = 0.65, level: float = 170.0, sigma: float = 2.0
        ) -> Nuisance:
    """Fog or haze: every pixel pulled towards a light grey, so moving things have little contrast."""
    rng = np.random.default_rng(seed)
    return lambda i, img: _out(_gray(img) * (1 - density) + level * density
                               + rng.normal(0.0, sigma, img.shape[:2]))


def steady(n: int, seed: int = 0, sigma: float = 2.0) -> Nuisance:
    """Ordinary daytime sensor noise only: the clean condition."""
    rng = np.random.default_rng(seed)
    return lambda i, img: _out(_gray(img) + rng.normal(0.0, sigma, img.shape[:2]))


NUISANCES: dict[str, Callable[..., Nuisance]] = {
    "sensor_noise": sensor_noise,
    "cloud_ramp": cloud_ramp,
    "light_step": light_step,
    "ir_switch": ir_switch,
    "rain": rain,
    "jitter": jitter,
}


def nuisance_clip(name: str, still: np.ndarray, n: int, seed: int = 0) -> list[np.ndarray]:
    """n grayscale frames of a colour still with the named nuisance; nothing in them moves.
    Steps and switches happen halfway, a cloud passes over the whole clip."""
    apply = NUISANCES[name](n, seed)
    return [apply(i, still) for i in range(n)]


# -- slow movers: a real object cut out of real footage, moved slowly over the clip's empty scene --

def cutout(frames: list[np.ndarray], empty: np.ndarray, min_area: int = 150, max_area: int = 2500,
           thresh: float = 35.0) -> tuple[np.ndarray, np.ndarray]:
    """The largest single moving object (a person, a car) of a real clip, cut out of the frame where
    it is largest: (BGR patch, alpha 0..1 float32 of the same size). The object's pixels are those
    that differ from `empty` (the clip's temporal median), cleaned up and feathered at the edge."""
    best: tuple[int, np.ndarray, np.ndarray] | None = None
    kernel = np.ones((3, 3), np.uint8)
    for frame in frames:
        diff = cv2.absdiff(frame, empty).max(axis=2) if frame.ndim == 3 else cv2.absdiff(frame, empty)
        mask = cv2.morphologyEx((diff > thresh).astype(np.uint8) * 255, cv2.MORPH_CLOSE, kernel, iterations=2)
        mask = cv2.morphologyEx(mask, cv2.MORPH_OPEN, kernel)
        n, labels, stats, _ = cv2.connectedComponentsWithStats(mask, 8)
        for i in range(1, n):
            x, y, w, h, a = stats[i]
            edge = x <= 2 or y <= 2 or x + w >= mask.shape[1] - 2 or y + h >= mask.shape[0] - 2
            if not min_area <= a <= max_area or edge or (best is not None and a <= best[0]):
                continue
            obj = (labels[y:y + h, x:x + w] == i).astype(np.float32)
            best = (int(a), frame[y:y + h, x:x + w].copy(), obj)
    if best is None:
        raise ValueError("no single moving object of the wanted size in these frames")
    _, patch, obj = best
    alpha = cv2.GaussianBlur(obj, (3, 3), 0)
    return patch, np.clip(alpha, 0.0, 1.0)


def slow_mover(empty: np.ndarray, patch: np.ndarray, alpha: np.ndarray, start: tuple[float, float],
               velocity: tuple[float, float], fps: float, move_from: int = 0) -> Callable[[int], np.ndarray]:
    """Frame i (BGR, like `empty`) of the cut-out object composited onto the empty scene at
    `start` (x, y of its top-left corner, pixels, may be outside the frame) moving at `velocity`
    (pixels per second) from frame `move_from` on; sub-pixel positions are interpolated, so a
    2 px/s object moves smoothly, not in 1 px jumps."""
    h, w = empty.shape[:2]
    ph, pw = alpha.shape
    base = empty.astype(np.float32)
    src = patch.astype(np.float32)
    a3 = alpha[..., None] if empty.ndim == 3 else alpha

    def frame(i: int) -> np.ndarray:
        t = max(0, i - move_from) / fps
        x, y = start[0] + velocity[0] * t, start[1] + velocity[1] * t
        m = np.float32([[1, 0, x], [0, 1, y]])
        obj = cv2.warpAffine(src, m, (w, h), flags=cv2.INTER_LINEAR, borderValue=0)
        a = cv2.warpAffine(a3 if a3.ndim == 2 else a3[..., 0], m, (w, h), flags=cv2.INTER_LINEAR,
                           borderValue=0)
        a = a[..., None] if empty.ndim == 3 else a
        return np.clip(base * (1 - a) + obj * a, 0, 255).astype(np.uint8)

    del pw, ph
    return frame
