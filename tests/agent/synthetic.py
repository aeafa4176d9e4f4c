"""Synthetic no-motion clips built from a still of real footage, for motion and event tests.

Each generator yields grayscale uint8 frames of the still's size: nothing moves in them, only the
nuisances that fool street-camera detectors (noise, clouds, light steps, IR switch, rain, shake).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import cv2
import numpy as np

DATA = Path(__file__).resolve().parents[2] / ".." / "shared" / "data"

Clip = Callable[[np.ndarray, int, int], Iterator[np.ndarray]]


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


def sensor_noise(still: np.ndarray, n: int, seed: int = 0, gain: float = 0.35, sigma: float = 7.0
                 ) -> Iterator[np.ndarray]:
    """Night: the scene darkened to `gain` of its brightness, with fresh Gaussian noise per frame."""
    rng = np.random.default_rng(seed)
    base = _gray(still) * gain
    for _ in range(n):
        yield _out(base + rng.normal(0.0, sigma, base.shape))


def cloud_ramp(still: np.ndarray, n: int, seed: int = 0, depth: float = 0.45, sigma: float = 2.0
               ) -> Iterator[np.ndarray]:
    """A cloud passes: brightness eases down by `depth` and back up over the clip, with mild noise."""
    rng = np.random.default_rng(seed)
    base = _gray(still)
    for i in range(n):
        k = 1.0 - depth * np.sin(np.pi * i / max(1, n - 1)) ** 2
        yield _out(base * k + rng.normal(0.0, sigma, base.shape))


def light_step(still: np.ndarray, n: int, seed: int = 0, gain: float = 1.5, offset: float = 25.0,
               sigma: float = 2.0) -> Iterator[np.ndarray]:
    """A street light or exposure jump: halfway through, brightness steps to gain * v + offset."""
    rng = np.random.default_rng(seed)
    base = _gray(still)
    for i in range(n):
        img = base * gain + offset if i >= n // 2 else base
        yield _out(img + rng.normal(0.0, sigma, base.shape))


def ir_switch(still: np.ndarray, n: int, seed: int = 0, sigma: float = 2.0) -> Iterator[np.ndarray]:
    """Day/night IR cut-filter switch halfway: colour luma before; after it the camera is grayscale
    and sees near-infrared, where foliage and red surfaces are bright: a brighter, re-weighted image."""
    rng = np.random.default_rng(seed)
    if still.ndim != 3:
        raise ValueError("ir_switch needs a colour still")
    day = _gray(still)
    b, g, r = (still[..., c].astype(np.float32) for c in range(3))
    night = 0.65 * r + 0.3 * g + 0.05 * b
    night = night * 1.3 + 20.0
    for i in range(n):
        img = night if i >= n // 2 else day
        yield _out(img + rng.normal(0.0, sigma, day.shape))


def rain(still: np.ndarray, n: int, seed: int = 0, drops: int = 120, sigma: float = 2.0
         ) -> Iterator[np.ndarray]:
    """Heavy rain: fresh short slanted bright streaks all over every frame (motion-blurred drops)."""
    rng = np.random.default_rng(seed)
    base = _gray(still)
    h, w = base.shape
    for _ in range(n):
        streaks = np.zeros_like(base)
        xs = rng.integers(0, w, drops)
        ys = rng.integers(0, h, drops)
        lengths = rng.integers(6, 18, drops)
        levels = rng.uniform(30, 70, drops)
        for x, y, ln, lv in zip(xs, ys, lengths, levels, strict=True):
            cv2.line(streaks, (int(x), int(y)), (int(x + ln // 4), int(y + ln)), float(lv), 1)
        yield _out(base + streaks + rng.normal(0.0, sigma, base.shape))


def jitter(still: np.ndarray, n: int, seed: int = 0, max_px: float = 2.0, sigma: float = 2.0
           ) -> Iterator[np.ndarray]:
    """Camera shake on a pole: each frame shifted by up to max_px (sub-pixel) in x and y."""
    rng = np.random.default_rng(seed)
    base = _gray(still)
    h, w = base.shape
    for _ in range(n):
        dx, dy = rng.uniform(-max_px, max_px, 2)
        m = np.float32([[1, 0, dx], [0, 1, dy]])
        img = cv2.warpAffine(base, m, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
        yield _out(img + rng.normal(0.0, sigma, base.shape))


def steady(still: np.ndarray, n: int, seed: int = 0, sigma: float = 2.0) -> Iterator[np.ndarray]:
    """The still with ordinary daytime sensor noise: the calm before and after a nuisance."""
    rng = np.random.default_rng(seed)
    base = _gray(still)
    for _ in range(n):
        yield _out(base + rng.normal(0.0, sigma, base.shape))


NUISANCES: dict[str, Clip] = {
    "sensor_noise": sensor_noise,
    "cloud_ramp": cloud_ramp,
    "light_step": light_step,
    "ir_switch": ir_switch,
    "rain": rain,
    "jitter": jitter,
}


def nuisance_clip(name: str, still: np.ndarray, n: int, seed: int = 0, lead_in: int = 0
                  ) -> list[np.ndarray]:
    """`lead_in` steady frames (for calibration) followed by n frames of the named nuisance."""
    return list(steady(still, lead_in, seed + 1000)) + list(NUISANCES[name](still, n, seed))
