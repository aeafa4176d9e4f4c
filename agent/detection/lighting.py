"""Is a change a thing or the light? Pattern tests shared by the motion detector's blob checks.

A re-lit surface (headlights, a cloud, a light switched on) keeps its texture; a new object does not.
Pure functions on small grey arrays, used by agent.detection.motion and agent.detection.slow.
"""

from __future__ import annotations

import cv2
import numpy as np

_SWEEP_CORR = 0.6  # local correlation above which a moving change is a beam of light, not a thing
_FLAT_LOCAL = 4.0  # grey-level spread in a 7x7 window below which it has no pattern


def pattern_match(frame_px: np.ndarray, bg_px: np.ndarray) -> tuple[float, float]:
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


def relit(ncc: np.ndarray, textured: np.ndarray) -> bool:
    """A moving blob is a beam of light (headlights sweeping) if most of it has texture and that
    texture still matches the background."""
    n = np.count_nonzero(textured)
    return n >= 0.15 * textured.size and np.count_nonzero(ncc[textured] > _SWEEP_CORR) >= 0.6 * n


def local_ncc(frame: np.ndarray, bg: np.ndarray, k: int = 7) -> tuple[np.ndarray, np.ndarray]:
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
