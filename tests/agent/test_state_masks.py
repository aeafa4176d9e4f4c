"""Component state round-trips through SQLite; privacy masks blank exactly the polygon."""

import numpy as np

from agent.clock import ManualClock
from agent.db import connect
from agent.detection.masks import PrivacyMasker, detection_mask
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


def test_privacy_mask_on_a_full_frame_blanks_the_mask_pixels_without_allocating_per_frame() -> None:
    """apply() runs on every recorded frame: the same pixels as mask_for, and no frame-sized index
    arrays (boolean indexing allocated ~2 x 8 bytes per masked pixel, ~15 ms a 1080p frame)."""
    import tracemalloc

    masker = PrivacyMasker([[(0.0, 0.0), (0.3, 0.0), (0.3, 1.0), (0.0, 1.0)],
                            [(0.6, 0.6), (0.9, 0.6), (0.9, 0.9)]])
    for shape in [(1080, 1920, 3), (361, 479), (1080, 1920)]:
        image = np.random.default_rng(1).integers(1, 255, shape, np.uint8)
        expected = image.copy()
        expected[masker.mask_for(shape[1], shape[0])] = 0
        masker.apply(image.copy())  # warm the per-size cache
        tracemalloc.start()
        try:
            masker.apply(image)
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        assert (image == expected).all()
        assert peak < 64 * 1024, f"{peak} bytes allocated for one frame"
    view = np.zeros((100, 200, 3), np.uint8)[:, ::2]  # not contiguous: still masked in place
    masker.apply(view)
    assert view.base is not None and (view[masker.mask_for(100, 100)] == 0).all()
