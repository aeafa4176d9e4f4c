"""Motion detector on real footage: people and vehicles are seen, and on the CDnet highway clip the
detector agrees with the hand-made per-pixel ground truth (thresholds measured, with margin)."""

import cv2
import numpy as np
import pytest

from agent.config import MotionConfig
from agent.detection.motion import MotionDetector, MotionResult
from tests.agent.motion_eval import CDNET, PixelScore, load_cdnet
from tests.agent.synthetic import DATA, cloud_ramp, fog, read_frames

SIZE = (320, 240)


def need(path):
    if not path.exists():
        pytest.skip(f"{path} absent: the shared footage folder ../shared/data is needed")
    return path


def analyse(frames: list[np.ndarray], fps: float, cfg: MotionConfig | None = None
            ) -> tuple[MotionDetector, list[tuple[int, MotionResult]]]:
    """Feed frames through the rate cap as a camera would; (frame index, result) per analysed frame."""
    det = MotionDetector(cfg or MotionConfig(), SIZE)
    out = []
    for i, frame in enumerate(frames):
        t = i / fps
        if det.should_analyse(t):
            out.append((i, det.analyse(frame, t)))
    return det, out


@pytest.fixture(scope="module")
def highway() -> list[np.ndarray]:
    return read_frames(need(CDNET / "highway_input_h264.mp4"))


@pytest.mark.parametrize(
    ("clip", "fps", "min_fraction"),
    [
        ("opencv_vtest_480x360.avi", 10.0, 0.9),  # pedestrians on a forecourt; measured 0.99
        ("bgslibrary_video02.avi", 25.0, 0.9),  # motorway traffic; measured 0.99
        ("cdnet_highway/highway_input_h264.mp4", 25.0, 0.9),  # highway traffic; measured 1.0
    ],
)
def test_people_and_vehicles_detected(clip: str, fps: float, min_fraction: float) -> None:
    """Every one of these clips has someone or something moving in every frame (checked by eye)."""
    frames = read_frames(need(DATA / clip), SIZE)
    _, results = analyse(frames, fps)
    assert len(results) == pytest.approx(len(frames) * 5 / fps, abs=2)  # the 5 fps cap held
    live = [r for _, r in results if not r.calibrating]
    assert len(live) > 0.9 * len(results)  # calibration is short and does not recur
    assert sum(r.motion for r in live) >= min_fraction * len(live)
    assert all(0 < r.score < 0.5 for r in live if r.boxes)
    for r in live:
        for x, y, w, h in r.boxes:
            assert 0 <= x and 0 <= y and x + w <= 1.0 + 1e-9 and y + h <= 1.0 + 1e-9


def test_cdnet_pixel_agreement(highway: list[np.ndarray]) -> None:
    """Pixel precision/recall over the evaluated frames (470-1700) at the 5 fps analysis rate.
    Measured: P 0.80, R 0.84, F1 0.82 (OpenCV MOG2 at all 25 fps: P 0.89, R 0.70, F1 0.79)."""
    truth = load_cdnet()
    det = MotionDetector(MotionConfig(), SIZE)
    score = PixelScore()
    for i in range(0, len(highway), 5):
        r = det.analyse(highway[i], i / 25)
        if i < truth.first or i > truth.last:
            continue
        mask = det.mask
        predicted = np.zeros(truth.roi.shape, bool)
        if mask is not None and r.boxes:
            predicted = cv2.resize(mask, SIZE, interpolation=cv2.INTER_NEAREST) > 0
        score.add(predicted, truth.masks[i], truth.roi)
    assert score.precision >= 0.72
    assert score.recall >= 0.75
    assert score.f1 >= 0.75


def test_cdnet_frame_agreement_and_boxes_cover_the_vehicles(highway: list[np.ndarray]) -> None:
    """Frame level: every evaluated frame has vehicles; nearly all must be flagged, and the boxes
    must cover most ground-truth motion pixels (measured: 246 of 246 frames, 93% covered)."""
    truth = load_cdnet()
    _, results = analyse(highway, 25.0)
    evaluated = [(i, r) for i, r in results if truth.first <= i <= truth.last and truth.motion_pixels(i) > 0]
    assert len(evaluated) > 200
    assert sum(r.motion for _, r in evaluated) >= 0.95 * len(evaluated)
    covered = total = 0
    for i, r in evaluated:
        boxes = np.zeros(truth.roi.shape, bool)
        for x, y, w, h in r.boxes:
            boxes[round(y * 240) : round((y + h) * 240), round(x * 320) : round((x + w) * 320)] = True
        moving = (truth.masks[i] == 255) & truth.roi
        covered += int(np.count_nonzero(moving & boxes))
        total += int(np.count_nonzero(moving))
    assert covered / total >= 0.85


def test_motion_ends_after_the_traffic_leaves(highway: list[np.ndarray]) -> None:
    """Real traffic spliced between stills of the empty road (the clip's temporal median): motion
    starts with the traffic and stops within 3 s of it leaving; nothing before or after."""
    empty = np.median(np.stack(highway[::25]), axis=0).astype(np.uint8)
    fps = 5.0
    frames = [empty] * 50 + highway[600:900:5] + [empty] * 50
    det = MotionDetector(MotionConfig(), SIZE)
    flags = [det.analyse(f, i / fps).motion for i, f in enumerate(frames)]
    assert not any(flags[:50])
    assert flags.index(True) <= 52
    assert sum(flags[50:110]) >= 55
    assert not any(flags[110 + int(3 * fps) :])



@pytest.mark.parametrize(("weather", "k"), [("fog", 12), ("fast_deep_cloud", 9)])
def test_no_false_slow_mover_after_traffic_in_fog_and_cloud(highway: list[np.ndarray], weather: str, k: int
                                                             ) -> None:
    """The two sequences where the slow-mover path once made a false event (benchmarks/motion.py,
    highway, held-out fog and fast deep cloud, same footage, seeds and layout): 4 s stretches of
    real traffic between 12 s of the empty road. Light was matched in whole grey levels on a
    low-contrast frame, and the slow scene was relearnt piecewise at different points of the
    cloud: road markings and whole regions differed. Motion now only with the traffic (and up to
    3 s after it leaves)."""
    empty = np.median(np.stack(highway[469:1700:10]), axis=0).astype(np.uint8)
    fps, period = 5.0, 160
    effect = fog(period, seed=k) if weather == "fog" else cloud_ramp(period // 2, seed=k, depth=0.6)
    starts = np.linspace(469, 1699 - 100, 45).astype(int)[3 * k : 3 * k + 3]
    raw, truth = [empty] * 30, []
    for s in starts:
        raw += [empty] * 60
        truth.append(len(raw))
        raw += highway[s : s + 100 : 5]
    raw += [empty] * 60
    shift = 80 - (30 + 30)  # as the benchmark: steps land mid-way through the empty stretches
    det = MotionDetector(MotionConfig(), SIZE)
    flags = [det.analyse(effect((i + shift) % period, f), i / fps).motion for i, f in enumerate(raw)]
    for a in truth:
        assert any(flags[a : a + 25]), "traffic missed"
    stray = [i / fps for i, f in enumerate(flags) if f and not any(a <= i <= a + 20 + 3 * fps for a in truth)]
    assert not stray, f"{weather}: motion without traffic at {stray[:3]} s"
