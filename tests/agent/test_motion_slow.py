"""Slow movers: a real person cut out of the forecourt footage, edging across the real empty scene
at 2 px/s (at 480 px width), is caught; the same person standing still is not, in any weather."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from agent.config import MotionConfig
from agent.detection.motion import MotionDetector
from tests.agent.synthetic import DATA, NUISANCES, cutout, read_frames, slow_mover
from tests.once import once

FPS = 5.0
SIZE = (320, 240)
SPEED = 2.0 * SIZE[0] / 480  # 2 px/s at 480 px width
LEAD = 100  # frames (20 s) before the person moves


@pytest.fixture(scope="module")
def scene(tmp_path_factory) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The empty forecourt and a person cut out of it, made once per test run."""
    path = DATA / "opencv_vtest_480x360.avi"
    if not path.exists():
        pytest.skip(f"{path} absent: the shared footage folder ../shared/data is needed")

    def build(_: object) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        frames = read_frames(path, SIZE, gray=False)
        empty = np.median(np.stack(frames[::10]), axis=0).astype(np.uint8)
        patch, alpha = cutout(frames[::7], empty)
        return empty, patch, alpha

    return once(tmp_path_factory, "slow_mover_scene", build)


SLOW = MotionConfig()  # the slow-mover check is on by default (slow_window_s = 8)


def _flags(frames: list[np.ndarray], cfg: MotionConfig = SLOW) -> list[bool]:
    det = MotionDetector(cfg, SIZE)
    return [det.analyse(f, i / FPS).motion for i, f in enumerate(frames)]


def test_a_person_moving_at_2_px_per_second_is_caught(scene) -> None:
    """In the scene from the start (so part of the learnt background), then edging sideways."""
    empty, patch, alpha = scene
    draw = slow_mover(empty, patch, alpha, (40.0, 105.0), (SPEED, 0.0), FPS, move_from=LEAD)
    frames = [draw(i) for i in range(LEAD + 150)]  # 30 s of movement
    flags = _flags(frames)
    assert not any(flags[:LEAD]), "motion before the person moved"
    first = next((i for i, f in enumerate(flags) if f), None)
    assert first is not None, "a person moving at 2 px/s was never caught"
    assert (first - LEAD) / FPS <= 15.0  # measured 8.4 s
    assert sum(flags[first:]) >= 0.6 * len(flags[first:])  # and mostly followed from then on
    # Without the slow-mover check (slow_window_s = 0) the running-average background takes the person in.
    assert not any(_flags(frames, MotionConfig(slow_window_s=0)))


@pytest.mark.parametrize("name", sorted(NUISANCES))
def test_a_person_standing_still_makes_no_motion_in_any_weather(scene, name: str) -> None:
    empty, patch, alpha = scene
    draw = slow_mover(empty, patch, alpha, (40.0, 105.0), (0.0, 0.0), FPS)
    n = 200
    effect = NUISANCES[name](n, seed=3)
    flags = _flags([effect(i, draw(i)) for i in range(n)])
    assert not any(flags), f"{name}: motion reported for a person standing still"


@pytest.mark.parametrize("speed", [
    2.0,
    pytest.param(8.0, marks=pytest.mark.xfail(strict=True, reason=(
        "known limit: at 8 px/s the soft shadow edge (45 % darker, ~100 px wide) is taken for a "
        "slow mover from ~14 s on; a flat lit forecourt has no texture to show it is only light"))),
])
def test_a_cloud_shadow_edge_sweeping_slowly_is_not_a_slow_mover(scene, speed: float) -> None:
    """A cloud's shadow whose soft edge crosses the scene at slow-mover speeds (px/s at 320 px):
    a diffuse change of light, not a compact thing; the person stands still in it. Not one of the
    benchmark's conditions (a global cloud is): added to probe the slow-mover path."""
    empty, patch, alpha = scene
    draw = slow_mover(empty, patch, alpha, (40.0, 105.0), (0.0, 0.0), FPS)
    rng = np.random.default_rng(7)
    xs = np.arange(SIZE[0], dtype=np.float32)[None, :]
    frames = []
    for i in range(300):
        edge = -40.0 + speed * i / FPS
        shade = 1.0 - 0.45 / (1.0 + np.exp(-(edge - xs) / 25.0))  # shadow left of the edge
        gray = cv2.cvtColor(draw(i), cv2.COLOR_BGR2GRAY).astype(np.float32)
        frames.append(np.clip(gray * shade + rng.normal(0.0, 2.0, gray.shape), 0, 255).astype(np.uint8))
    flags = _flags(frames)
    assert not any(flags), f"motion at {[i / FPS for i, f in enumerate(flags) if f][:3]} s"
