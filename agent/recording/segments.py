"""Continuous local recording: full frames -> privacy masks -> H.264 MP4 segments -> segment index.

Each segment starts on a keyframe and is written under a temporary name, fsynced and atomically
renamed, so a power cut loses at most the segment in progress. Segment times come from monotonic
frame times plus one wall-clock offset per run; a clock step splits the segment and shifts the
run's earlier segments, so times never overlap or run backwards (see docs/recording.md).
"""

from __future__ import annotations

import logging
import sqlite3
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from agent.clock import Clock, to_utc
from agent.config import Config
from agent.detection.masks import PrivacyMasker
from agent.fsutil import publish, remove_stale_tmp, sha256_file, tmp_path_for
from agent.recording.index import Segment, SegmentIndex
from agent.recording.segment_time import Timeline
from agent.sources.base import Frame
from agent.state import StateStore

log = logging.getLogger(__name__)

__all__ = ["Segment", "SegmentIndex", "SegmentRecorder", "make_recorder", "recordings_dir", "segment_path"]

TIME_BASE = Fraction(1, 1000)  # pts in milliseconds
RETRY_AFTER_FAILURE_S = 1.0


def recordings_dir(data_dir: Path) -> Path:
    return data_dir / "recordings"


def segment_path(root: Path, unit: str, start: float) -> Path:
    """<root>/<YYYY-MM-DD>/<unit>_<YYYYMMDDTHHMMSS.mmmZ>.mp4, all UTC."""
    dt = to_utc(start)
    stamp = dt.strftime("%Y%m%dT%H%M%S") + f".{dt.microsecond // 1000:03d}Z"
    return root / dt.strftime("%Y-%m-%d") / f"{unit}_{stamp}.mp4"


@dataclass
class _Open:
    """The segment being written."""

    final: Path
    tmp: Path
    container: av.container.OutputContainer
    stream: av.VideoStream
    t0: float  # monotonic time of the first frame
    offset: float  # wall = mono + offset for this segment
    size: tuple[int, int]
    synced: bool
    frames: int = 0
    last_t: float = 0.0
    last_pts: int = -1
    gaps: list[float] = field(default_factory=list)


class SegmentRecorder:
    """Software (PyAV libx264) recorder. Called from one thread: write(frame) per frame, close() at
    the end (finishes and publishes the open segment). `on_segment` is called after each publish."""

    def __init__(self, cfg: Config, clock: Clock, index: SegmentIndex, masker: PrivacyMasker | None = None,
                 state: StateStore | None = None,
                 on_segment: Callable[[Segment], None] | None = None) -> None:
        self._cfg = cfg
        self._clock = clock
        self._index = index
        self._masker = masker
        self._state = state
        self._on_segment = on_segment
        self._root = recordings_dir(cfg.unit.data_dir)
        self._root.mkdir(parents=True, exist_ok=True)
        self._open: _Open | None = None
        self._failed_at: float | None = None  # monotonic time of the last write failure
        self.last_segment: Segment | None = None
        removed = remove_stale_tmp(self._root)
        if removed:
            log.info("removed %d unfinished segment(s) left by a crash", removed)
        index.reconcile(self._root)
        self._timeline = Timeline(clock, index, uuid.uuid4().hex)

    # --- per frame ---

    def write(self, frame: Frame) -> None:
        """Record one frame. A write failure (disk full, I/O error) drops the segment in progress,
        reports `recording` state `error`, and recording resumes with a new segment a second later."""
        try:
            if self._failed_at is not None and frame.t - self._failed_at < RETRY_AFTER_FAILURE_S:
                if (step := self._timeline.step_seen(frame.wall, frame.t)) is not None:
                    self._timeline.apply_step(step)
                return
            self._write(frame)
        except (OSError, av.error.FFmpegError, sqlite3.OperationalError) as err:
            self._abort(frame.t, err)
            return
        if self._failed_at is not None:
            self._failed_at = None
            log.info("recording resumed")

    def _abort(self, t: float, err: Exception) -> None:
        seg, self._open = self._open, None
        if seg is not None:
            try:
                seg.container.close()
            except (OSError, av.error.FFmpegError):
                pass
            seg.tmp.unlink(missing_ok=True)
        if self._failed_at is None:
            log.error("recording failed, segment in progress dropped: %s", err)
        self._failed_at = t
        if self._state is not None:
            try:
                self._state.report("recording", state="error", error=str(err),
                                   last_segment_at=self.last_segment.end if self.last_segment else None,
                                   segment_seconds=self._cfg.recording.segment_seconds)
            except sqlite3.OperationalError:
                pass

    def _write(self, frame: Frame) -> None:
        seg = self._open
        step = self._timeline.step_seen(frame.wall, frame.t)
        if step is not None:  # the wall clock was stepped: end the segment, re-time the run
            self._finish(end_t=frame.t if seg and frame.t > seg.last_t else None)
            self._timeline.apply_step(step)
        elif seg is not None and (
            frame.t - seg.t0 >= self._cfg.recording.segment_seconds
            or (frame.image.shape[1], frame.image.shape[0]) != seg.size
            or frame.t <= seg.last_t
        ):
            self._finish(end_t=frame.t if frame.t > seg.last_t else None)
        if self._open is None:
            self._start(frame)
        self._encode(frame)

    def _start(self, frame: Frame) -> None:
        start = frame.t + self._timeline.offset_for(frame.t)
        final = segment_path(self._root, self._cfg.unit.id, start)
        while final.exists():
            start += 0.001
            final = segment_path(self._root, self._cfg.unit.id, start)
        offset = start - frame.t
        final.parent.mkdir(parents=True, exist_ok=True)
        tmp = tmp_path_for(final)
        container = av.open(str(tmp), "w", format="mp4")
        h, w = frame.image.shape[:2]
        rec = self._cfg.recording
        fps = max(1, round(self._cfg.camera.fps))
        # Low latency and low memory: zerolatency means no lookahead, no B-frames and no frame
        # threads (each would hold frames); one thread is ample for 720p at 10 fps and saves the
        # per-thread buffers (the software path only: a Pi's picamera2 source uses its hardware encoder).
        stream = container.add_stream("libx264", rate=fps, options={
            "preset": "veryfast", "tune": "zerolatency", "bf": "0", "threads": "1", "rc-lookahead": "0",
            "g": str(max(1, round(self._cfg.camera.fps * rec.keyframe_interval_s))),
            "sc_threshold": "0", "maxrate": f"{rec.bitrate_kbps}k", "bufsize": f"{2 * rec.bitrate_kbps}k",
        })
        stream.width, stream.height = w - w % 2, h - h % 2
        stream.pix_fmt = "yuv420p"
        stream.bit_rate = rec.bitrate_kbps * 1000
        stream.time_base = TIME_BASE
        stream.codec_context.time_base = TIME_BASE
        synced = self._timeline.synced
        self._open = _Open(final, tmp, container, stream, frame.t, offset, (w, h), synced)

    def _encode(self, frame: Frame) -> None:
        seg = self._open
        assert seg is not None
        image = frame.image
        if self._masker is not None and self._masker.active:
            image = self._masker.apply(image.copy())
        if image.shape[0] % 2 or image.shape[1] % 2:
            image = image[: seg.stream.height, : seg.stream.width]
        vf = av.VideoFrame.from_ndarray(np.ascontiguousarray(image), format="bgr24")
        pts = max(round((frame.t - seg.t0) * 1000), seg.last_pts + 1)
        vf.pts, vf.time_base = pts, TIME_BASE
        if seg.frames:
            seg.gaps.append(frame.t - seg.last_t)
        seg.container.mux(seg.stream.encode(vf))
        seg.frames += 1
        seg.last_t, seg.last_pts = frame.t, pts

    # --- segment end ---

    def _finish(self, end_t: float | None = None) -> Segment | None:
        """Flush, publish and index the open segment; end_t = monotonic start of the next one."""
        seg, self._open = self._open, None
        if seg is None:
            return None
        try:
            seg.container.mux(seg.stream.encode(None))
            seg.container.close()
        except BaseException:
            self._open = seg  # for _abort to clean up
            raise
        if end_t is None:
            step = float(np.median(seg.gaps)) if seg.gaps else 1.0 / self._cfg.camera.fps
            end_t = seg.last_t + step
        synced = seg.synced and self._timeline.synced
        publish(seg.tmp, seg.final)
        size, digest = seg.final.stat().st_size, sha256_file(seg.final)
        segment = self._index.add(seg.final, seg.t0 + seg.offset, end_t + seg.offset, seg.frames, size,
                                  digest, synced, seg.t0, self._timeline.run_id)
        self.last_segment = segment
        self._timeline.published(segment)
        if self._state is not None:
            self._state.report("recording", state="recording", last_segment_at=segment.end,
                               segment_seconds=self._cfg.recording.segment_seconds)
        if self._on_segment is not None:
            self._on_segment(segment)
        return segment

    def close(self) -> Segment | None:
        """Finish and publish the open segment (clean shutdown); the recorder can write again after."""
        try:
            segment = self._finish()
        except (OSError, av.error.FFmpegError, sqlite3.OperationalError) as err:
            self._abort(self._clock.monotonic(), err)
            return None
        if self._state is not None:
            self._state.report("recording", state="stopped",
                               last_segment_at=self.last_segment.end if self.last_segment else None,
                               segment_seconds=self._cfg.recording.segment_seconds)
        return segment


def make_recorder(cfg: Config, clock: Clock, index: SegmentIndex, masker: PrivacyMasker | None,
                  source: object, state: StateStore | None = None,
                  on_segment: Callable[[Segment], None] | None = None) -> SegmentRecorder:
    """The hardware recorder for a picamera2 source (it attaches the encoder to the camera, open or
    not), else the software one. `source` may be a SupervisedSource wrapping the backend."""
    from agent.sources.picamera2 import Picamera2Source

    backend = getattr(source, "inner", source)
    if isinstance(backend, Picamera2Source):
        from agent.recording.segments_hw import Picamera2Recorder

        return Picamera2Recorder(cfg, clock, index, masker, backend, state, on_segment)  # type: ignore[return-value]
    return SegmentRecorder(cfg, clock, index, masker, state, on_segment)
