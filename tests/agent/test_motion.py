"""Motion detector contract: rate cap, calibration, hysteresis, zones, on simple drawn frames.

Real footage and nuisance clips are in test_motion_footage.py and test_motion_nuisance.py.
"""

import numpy as np
import pytest

from agent.config import MotionConfig, Zone
from agent.detection.motion import MotionDetector, MotionResult

W, H = 320, 240


def scene(seed: int = 0) -> np.ndarray:
    """A textured still (smooth gradient plus fixed blobs) so the contrast stretch has range."""
    rng = np.random.default_rng(seed)
    base = np.tile(np.linspace(40, 200, W, dtype=np.float32), (H, 1))
    for _ in range(12):
        x, y = rng.integers(0, W - 40), rng.integers(0, H - 40)
        base[y : y + 30, x : x + 30] = rng.integers(20, 230)
    return base.astype(np.uint8)


def with_square(img: np.ndarray, x: int, y: int, size: int = 24, value: int = 250) -> np.ndarray:
    out = img.copy()
    out[y : y + size, x : x + size] = value
    return out


def run(det: MotionDetector, frames: list[np.ndarray], fps: float = 5.0) -> list[MotionResult]:
    return [det.analyse(f, i / fps) for i, f in enumerate(frames)]


def test_rate_cap_keeps_every_other_frame_at_10fps() -> None:
    det = MotionDetector(MotionConfig(analysis_fps=5.0), (W, H))
    kept = []
    for i in range(20):
        t = i / 10
        if det.should_analyse(t):
            det.analyse(scene(), t)
            kept.append(i)
    assert kept == list(range(0, 20, 2))


def test_moving_square_detected_after_calibration_with_hysteresis() -> None:
    cfg = MotionConfig(hysteresis_frames=3)
    det = MotionDetector(cfg, (W, H))
    still = scene()
    results = run(det, [still] * 20 + [with_square(still, 20 + 8 * i, 100) for i in range(10)])
    calib = [r for r in results if r.calibrating]
    assert calib and all(not r.motion and r.score == 0 for r in calib)
    assert not any(r.motion for r in results[:20])
    moving = results[20:]
    assert all(r.boxes for r in moving)
    assert [r.motion for r in moving[:3]] == [False, False, True]
    assert all(r.motion for r in moving[2:])
    x, y, w, h = moving[-1].boxes[0]
    assert abs(x - (20 + 8 * 9) / W) < 0.05 and abs(y - 100 / H) < 0.05
    assert 0.0 < moving[-1].score < 0.05


def test_exclude_zone_ignores_motion_inside_it() -> None:
    left_half = Zone(polygon=[(0.0, 0.0), (0.5, 0.0), (0.5, 1.0), (0.0, 1.0)])
    det = MotionDetector(MotionConfig(exclude_zones=[left_half]), (W, H))
    still = scene()
    left = run(det, [still] * 20 + [with_square(still, 20 + 4 * i, 100) for i in range(8)])
    assert not any(r.motion or r.boxes for r in left)
    det.reset()
    right = run(det, [still] * 20 + [with_square(still, 200 + 4 * i, 100) for i in range(8)])
    assert any(r.motion for r in right)


def test_reset_recalibrates() -> None:
    det = MotionDetector(MotionConfig(), (W, H))
    run(det, [scene()] * 20)
    det.reset()
    assert det.analyse(scene(1), 100.0).calibrating


@pytest.mark.parametrize("sensitivity", [0.0, 0.5, 1.0])
def test_every_sensitivity_sees_a_large_contrasting_object(sensitivity: float) -> None:
    det = MotionDetector(MotionConfig(sensitivity=sensitivity), (W, H))
    still = scene()
    results = run(det, [still] * 20 + [with_square(still, 100 + 6 * i, 80, 40, 255) for i in range(6)])
    assert results[-1].motion


def test_long_gap_recalibrates_and_bad_frames_are_refused() -> None:
    det = MotionDetector(MotionConfig(), (W, H))
    run(det, [scene()] * 20)
    assert not det.analyse(scene(), 4.2).calibrating
    assert det.analyse(scene(3), 60.0).calibrating  # camera back after a stall: another scene
    yuv420 = np.zeros((H * 3 // 2, W), np.uint8)
    with pytest.raises(ValueError, match="Y plane"):
        det.analyse(yuv420, 61.0)
    with pytest.raises(ValueError, match="uint8"):
        det.analyse(scene().astype(np.float32), 61.0)


def test_score_is_a_fraction_of_the_include_zone() -> None:
    """The same moving square scores higher against a small include zone than the whole frame."""
    right_quarter = Zone(polygon=[(0.5, 0.25), (1.0, 0.25), (1.0, 0.75), (0.5, 0.75)])
    still = scene()
    frames = [still] * 20 + [with_square(still, 200 + 4 * i, 100) for i in range(8)]
    whole = run(MotionDetector(MotionConfig(), (W, H)), frames)[-1]
    zoned = run(MotionDetector(MotionConfig(include_zones=[right_quarter]), (W, H)), frames)[-1]
    assert whole.motion and zoned.motion
    assert zoned.score == pytest.approx(whole.score * 4, rel=0.25)
