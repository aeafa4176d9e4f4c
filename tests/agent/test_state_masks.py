"""Component state round-trips through SQLite; privacy masks blank exactly the polygon."""

import numpy as np

from agent.clock import ManualClock
from agent.db import connect
from agent.masks import PrivacyMasker, detection_mask
from agent.state import StateStore


def test_state_store_round_trip_and_counters(tmp_path) -> None:
    clock = ManualClock()
    store = StateStore(connect(tmp_path / "agent.db"), clock)
    store.report("camera", state="ok", fps=10.0)
    clock.advance(5)
    store.report("camera", state="stalled", fps=0.0)
    store.increment("events_lost")
    store.increment("events_lost", 2)
    other = StateStore(connect(tmp_path / "agent.db"), clock)  # another connection sees it
    cam = other.read("camera")
    assert cam is not None and cam.state == {"state": "stalled", "fps": 0.0}
    assert cam.updated_mono == clock.monotonic()
    assert other.counters() == {"events_lost": 3}
    assert other.read("missing") is None


def test_privacy_mask_blanks_polygon_only() -> None:
    img = np.full((100, 200, 3), 200, np.uint8)
    PrivacyMasker([[(0.0, 0.0), (0.5, 0.0), (0.5, 1.0), (0.0, 1.0)]]).apply(img)
    assert (img[:, :95] == 0).all()
    assert (img[:, 105:] == 200).all()


def test_detection_mask_include_minus_exclude() -> None:
    assert detection_mask([], [], 10, 10) is None
    m = detection_mask([], [[(0.0, 0.0), (1.0, 0.0), (1.0, 0.5)]], 10, 10)
    assert m is not None and m[9, 0] == 255 and m[0, 9] == 0
