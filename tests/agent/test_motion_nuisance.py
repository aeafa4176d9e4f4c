"""No-motion clips built from stills of real footage: noise, clouds, light steps, IR switch, rain
and shake must never raise the motion flag once the detector has calibrated."""

import pytest

from agent.config import MotionConfig
from agent.detection.motion import MotionDetector
from tests.agent import synthetic
from tests.agent.synthetic import DATA, NUISANCES, nuisance_clip, still_bgr

CLIPS = {
    "forecourt": DATA / "opencv_vtest_480x360.avi",
    "motorway": DATA / "bgslibrary_video02.avi",
    "highway": DATA / "cdnet_highway" / "highway_input_h264.mp4",
}
FPS = 5.0
FRAMES = 150  # 30 s at the default analysis rate


@pytest.fixture(scope="module", params=sorted(CLIPS))
def still(request):
    path = CLIPS[request.param]
    if not path.exists():
        pytest.skip(f"{path} absent: the shared footage folder ../shared/data is needed")
    return still_bgr(path, index=5)


@pytest.mark.parametrize("name", sorted(NUISANCES))
@pytest.mark.parametrize("seed", [0, 1])
def test_nuisance_never_reports_motion(still, name: str, seed: int) -> None:
    det = MotionDetector(MotionConfig(), (320, 240))
    results = [det.analyse(f, i / FPS) for i, f in enumerate(nuisance_clip(name, still, FRAMES, seed))]
    assert results[0].calibrating
    assert not [r.t for r in results if r.motion], f"{name}: motion reported"
    # At most the single frame of a step or switch may show raw change before it is absorbed.
    assert sum(1 for r in results if r.boxes) <= 1


@pytest.mark.parametrize("sensitivity", [0.75, 0.9])
@pytest.mark.parametrize("name", ["sensor_noise", "rain", "jitter"])
def test_high_sensitivity_still_quiet_in_noise_rain_and_shake(still, name: str, sensitivity: float) -> None:
    det = MotionDetector(MotionConfig(sensitivity=sensitivity), (320, 240))
    results = [det.analyse(f, i / FPS) for i, f in enumerate(nuisance_clip(name, still, FRAMES))]
    assert not any(r.motion for r in results)


def test_nuisances_really_change_the_frames(still) -> None:
    """Guard against a generator that silently does nothing (which would make the tests vacuous)."""
    base = synthetic.steady(2)(0, still).astype(int)
    for name in NUISANCES:
        frames = nuisance_clip(name, still, 20)
        changed = max(abs(f.astype(int) - base).mean() for f in frames)
        assert changed > 1.5, name
