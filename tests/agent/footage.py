"""Test helpers: the real sample clips in ../shared/data, and H.264 segments encoded from them.

Used by the events, detect and run tests; skips with a clear reason when the footage is absent.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import av
import pytest

DATA = Path(__file__).resolve().parents[2] / ".." / "shared" / "data"
VTEST = DATA / "opencv_vtest_480x360.avi"
T0 = 1_767_225_600.0  # 2026-01-01T00:00:00Z


def footage(path: Path) -> Path:
    if not path.is_file():
        pytest.skip(f"sample footage {path} is absent (see ../shared/data/README.md)")
    return path


@dataclass
class Seg:
    path: Path
    start: float
    end: float
    clock_synced: bool = True


def encode_segments(src: Path, folder: Path, seg_s: float = 10.0, gop: int = 20,
                    max_frames: int | None = None, size: tuple[int, int] | None = None) -> list[Seg]:
    """Re-encode a clip into H.264 MP4 segments starting at T0, a keyframe every `gop` frames,
    each segment starting on a keyframe (as agent.recording.segments does); `size` scales the
    frames (e.g. the sample clip up to a Pi's 1280x720)."""
    folder.mkdir(parents=True, exist_ok=True)
    segs: list[Seg] = []
    out = stream = None
    k = n = 0
    with av.open(str(src)) as inp:
        fps = float(inp.streams.video[0].average_rate or 10)
        for i, frame in enumerate(inp.decode(video=0)):
            if max_frames is not None and i >= max_frames:
                break
            t = i / fps
            if out is None or t >= len(segs) * seg_s - 1e-9:
                if out is not None:
                    out.mux(stream.encode())
                    out.close()
                    segs[-1].end = T0 + t
                path = folder / f"seg{len(segs):03d}.mp4"
                out = av.open(str(path), "w")
                stream = out.add_stream("libx264", rate=round(fps))
                stream.width, stream.height = size or (frame.width, frame.height)
                stream.pix_fmt = "yuv420p"
                stream.options = {"g": str(gop), "bf": "0", "preset": "ultrafast"}
                segs.append(Seg(path, T0 + t, T0 + t))
                k = 0
            f = frame.reformat(stream.width, stream.height, format="yuv420p")
            f.pts = k
            k += 1
            out.mux(stream.encode(f))
            n = i + 1
        out.mux(stream.encode())
        out.close()
        segs[-1].end = T0 + n / fps
    return segs


def first_frames(src: Path, out: Path, frames: int) -> Path:
    """The first `frames` frames of a real clip, same size and rate (MJPEG AVI): for tests that need
    recorded footage and events but not the whole clip (each second of footage costs CPU to record)."""
    import cv2

    cap = cv2.VideoCapture(str(footage(src)))
    fps = cap.get(cv2.CAP_PROP_FPS) or 10.0
    size = (int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)), int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT)))
    writer = cv2.VideoWriter(str(out), cv2.VideoWriter_fourcc(*"MJPG"), fps, size)
    try:
        for _ in range(frames):
            ok, image = cap.read()
            if not ok:
                break
            writer.write(image)
    finally:
        writer.release()
        cap.release()
    return out


def sample_start(tmp_path_factory: pytest.TempPathFactory, seconds: int = 15) -> Path:
    """The first `seconds` of the forecourt sample (people walking throughout, an event from the first
    seconds), cut once per test run and shared by the workers (read only)."""
    from tests.once import once

    name = f"vtest_{seconds}s"
    return once(tmp_path_factory, name, lambda d: first_frames(VTEST, d / f"{name}.avi", seconds * 10))
