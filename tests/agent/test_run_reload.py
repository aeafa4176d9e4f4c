"""Config reload while running: new privacy masks reach recording and snapshots without a gap;
a new detector or event setting is taken at the next analysed frame."""

from __future__ import annotations

import threading
from pathlib import Path

import av
import numpy as np
import pytest

from agent.clock import ManualClock
from agent.config import EventsConfig, MotionConfig, parse_config
from agent.db import connect, db_path
from agent.detection.analyser import Analyser
from agent.detection.masks import LiveMasker
from agent.recording.index import SegmentIndex
from agent.runner import run
from agent.sources.base import Frame
from tests.agent.footage import T0
from tests.waiting import holds_within

LEFT = [[0.0, 0.0], [0.2, 0.0], [0.2, 1.0], [0.0, 1.0]]


def test_live_masker_swaps_masks() -> None:
    masker = LiveMasker([])
    img = np.full((10, 20, 3), 99, np.uint8)
    assert not masker.active and (masker.apply(img.copy()) == 99).all()
    masker.update([LEFT])
    out = masker.apply(img.copy())
    assert masker.active and (out[:, :3] == 0).all() and (out[:, 6:] == 99).all()


def test_analyser_reconfigure_keeps_open_event_and_resets_changed_detector() -> None:
    cfg = parse_config({"unit": {"id": "u1"}}, env={})
    analyser = Analyser(cfg, "u1")
    rng = np.random.default_rng(0)
    base = rng.integers(60, 200, (120, 160), dtype=np.uint8)
    for i in range(60):  # calibrate, then a dark block walks across
        gray = base.copy()
        if i >= 20:
            gray[40:80, 5 + 4 * (i - 20):25 + 4 * (i - 20)] = 10
        analyser.feed(Frame(i, i * 0.2, T0 + i * 0.2, np.zeros((1, 1, 3), np.uint8), gray))
    assert analyser.tracker.open_event is not None
    detector = analyser._detector
    cfg = cfg.model_copy(update={"events": EventsConfig(post_roll_s=1)})
    analyser.reconfigure(cfg)
    assert analyser._detector is detector and analyser.tracker.open_event is not None
    analyser.reconfigure(cfg.model_copy(update={"motion": MotionConfig(sensitivity=0.2)}))
    assert analyser._detector is None and analyser.tracker.open_event is not None
    closed = []
    for i in range(60, 80):  # quiet again: the event closes after the new 1 s post-roll
        closed += analyser.feed(Frame(i, i * 0.2, T0 + i * 0.2, np.zeros((1, 1, 3), np.uint8), base))
    assert len(closed) == 1 and closed[0].event.clip_end_t - closed[0].event.end_t == pytest.approx(1.0)




def _left_mean(path: Path) -> tuple[float, float]:
    with av.open(str(path)) as c:
        frames = [f.to_ndarray(format="bgr24") for f in c.decode(video=0)]
    return float(frames[0][:, :100].mean()), float(frames[-1][:, :100].mean())


def test_new_privacy_mask_applies_while_recording(tmp_path, fake_picamera2, monkeypatch) -> None:
    from agent.sources.picamera2 import Picamera2Source

    raw = {"unit": {"id": "pi-unit", "data_dir": str(tmp_path)},
           "camera": {"source": "picamera2", "width": 640, "height": 360, "fps": 10},
           "recording": {"segment_seconds": 2, "keyframe_interval_s": 1},
           "upload": {"enabled": False}, "status": {"enabled": False}}
    cfg = parse_config(raw, env={})
    masked = parse_config({**raw, "privacy": {"masks": [{"name": "window", "polygon": LEFT}]}}, env={})
    clock = ManualClock(wall=T0)
    read = Picamera2Source.read

    def one_frame_per_tick(self, timeout: float = 1.0):
        clock.advance(0.1)
        return read(self, timeout)

    monkeypatch.setattr(Picamera2Source, "read", one_frame_per_tick)
    stop = threading.Event()

    def reload_then_stop(pipeline) -> None:
        def wait_for(n: int) -> None:
            holds_within(lambda: len(list(tmp_path.glob("recordings/*/*.mp4"))) >= n, 60)
        def go() -> None:
            wait_for(2)
            pipeline.apply_config(masked)
            wait_for(5)
            stop.set()
        threading.Thread(target=go, daemon=True).start()

    result = run(cfg, clock, stop=stop, on_pipeline=reload_then_stop)
    segments = SegmentIndex(connect(db_path(tmp_path))).all()
    assert result.frames == sum(s.frames for s in segments)  # nothing dropped across the reload
    assert all(abs(b.start - a.end) < 1e-6 for a, b in zip(segments, segments[1:], strict=False))
    assert _left_mean(segments[0].path)[0] > 40  # before: the left edge is recorded
    assert max(_left_mean(segments[-1].path)) < 24  # after: blanked before encoding
    rec = result.events[-1]
    import cv2
    snap = cv2.imread(str(tmp_path / rec.file("snapshot").path))
    assert snap[:, :100].mean() < 12
