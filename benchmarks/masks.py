"""Benchmark: cost of burning privacy masks into one frame (every recorded frame pays it), the
project's PrivacyMasker.apply beside the boolean-index baseline it replaced, in one run; writes
benchmarks/results/masks.json.

- privacy_masker: agent.detection.masks.PrivacyMasker.apply (cv2.fillPoly of the cached pixel polygons).
- bool_index: image[mask] = fill with the cached boolean mask (the previous implementation).
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from report import write_results  # noqa: E402

from agent.detection.masks import PrivacyMasker  # noqa: E402

# a typical site: a neighbour's window and a garden (two polygons, ~30% of the frame)
MASKS = [[(0.0, 0.0), (0.25, 0.0), (0.25, 0.8), (0.0, 1.0)],
         [(0.6, 0.55), (0.95, 0.6), (0.9, 0.95), (0.55, 0.9)]]
SIZES = {"720p": (1280, 720), "1080p": (1920, 1080)}
N = 100


def timed(fn, image: np.ndarray) -> list[float]:
    times = []
    for _ in range(N):
        t = time.perf_counter()
        fn(image)
        times.append(time.perf_counter() - t)
    return times


def main() -> int:
    masker = PrivacyMasker(MASKS)
    results: dict[str, dict] = {}
    for label, (w, h) in SIZES.items():
        image = np.random.default_rng(1).integers(0, 255, (h, w, 3), np.uint8)
        mask = masker.mask_for(w, h)

        def bool_index(img: np.ndarray, mask: np.ndarray = mask) -> None:
            img[mask] = (0, 0, 0)

        for name, fn in [("privacy_masker", masker.apply), ("bool_index", bool_index)]:
            fn(image)  # warm caches
            times = timed(fn, image)
            results[f"{name}_{label}"] = {"ms_per_frame_median": round(statistics.median(times) * 1000, 3),
                                          "ms_per_frame_mean": round(statistics.fmean(times) * 1000, 3)}
    results["_setup"] = {"frames": N, "masks": len(MASKS), "masked_fraction": round(float(mask.mean()), 3)}
    write_results("masks", results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
