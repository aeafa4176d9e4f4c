"""Hardware recording on a Raspberry Pi: picamera2's H264Encoder encodes the main stream, privacy
masks are burnt in by a pre_callback before encoding, and SegmentOutput splits the encoded stream
into MP4 segments at keyframes (temp name, fsync, atomic rename), like the software SegmentRecorder.

Threads: picamera2's encoder thread calls SegmentOutput.outputframe/start/stop; the pipeline thread
calls Picamera2Recorder.write/close, which index finished segments handed over through a queue.
"""

from __future__ import annotations

import io
import logging
import queue
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import av

from agent.clock import Clock
from agent.config import Config
from agent.detection.masks import PrivacyMasker
from agent.fsutil import publish, remove_stale_tmp, sha256_file, tmp_path_for
from agent.recording.index import Segment, SegmentIndex
from agent.recording.segment_time import Timeline
from agent.sources.base import Frame
from agent.sources.picamera2 import Picamera2Source, _import_picamera2
from agent.state import StateStore

log = logging.getLogger(__name__)

US = Fraction(1, 1_000_000)


@dataclass(frozen=True)
class Finished:
    """A published segment file, waiting to be indexed by the pipeline thread."""

    path: Path
    t0: float  # monotonic start
    t1: float  # monotonic end
    frames: int
    size: int
    synced: bool  # hashed by the pipeline thread (_drain), not on the encoder thread


class _SegmentFile:
    def __init__(self, final: Path, t0: float, size: tuple[int, int], fps: float, synced: bool) -> None:
        self.final, self.tmp, self.t0, self.synced = final, tmp_path_for(final), t0, synced
        final.parent.mkdir(parents=True, exist_ok=True)
        self.container = av.open(str(self.tmp), "w", format="mp4")
        self.size, self.rate = size, max(1, round(fps))
        self.stream: av.VideoStream | None = None  # made from the first packet (a keyframe)
        self.frames, self.last_t, self.last_pts = 0, t0, -1

    def _add_stream(self, first: bytes) -> av.VideoStream:
        """The segment's H.264 stream, described by the SPS and PPS of its first keyframe (headers
        repeated on every keyframe, repeat=True): stream copy, no encoder. PyAV's add_stream("h264")
        would open libx264 at 720p for every segment (about 5 MB and 4 threads) just to write the file
        header; only where the first packet cannot be parsed is that done, as before."""
        tb = Fraction(1, self.rate)  # the MP4 timescale follows it (10 fps: 10240), as add_stream's did
        try:
            with av.open(io.BytesIO(first), format="h264") as raw:
                template = raw.streams.video[0]
                if template.codec_context.width and template.codec_context.height:  # the SPS was read
                    return self.container.add_stream_from_template(template, time_base=tb)
        except (av.error.FFmpegError, IndexError):
            pass
        log.debug("first packet of %s not parsed: describing its stream with an encoder", self.final.name)
        stream = self.container.add_stream("h264", rate=self.rate)
        stream.width, stream.height = self.size
        return stream

    def mux(self, data: bytes, t: float) -> None:
        if self.stream is None:
            self.stream = self._add_stream(data)
        packet = av.Packet(data)
        pts = max(round((t - self.t0) * 1e6), self.last_pts + 1)
        packet.pts = packet.dts = pts
        packet.time_base = US
        packet.stream = self.stream
        self.container.mux(packet)
        self.frames, self.last_t, self.last_pts = self.frames + 1, t, pts

    def finish(self, end_t: float) -> Finished:
        self.container.close()
        publish(self.tmp, self.final)
        return Finished(self.final, self.t0, end_t, self.frames, self.final.stat().st_size, self.synced)


def segment_output_class(base: type) -> type:
    """A picamera2 Output subclass (the base comes from the lazily imported picamera2.outputs)."""

    class SegmentOutput(base):  # type: ignore[misc, valid-type]
        """Splits the encoder's stream into segments at the first keyframe after segment_seconds."""

        def __init__(self, cfg: Config, clock: Clock, root: Path, finished: queue.Queue,
                     synced: Callable[[], bool]) -> None:
            super().__init__()
            self._cfg, self._clock, self._root = cfg, clock, root
            self._finished, self._synced = finished, synced
            self._lock = threading.Lock()  # encoder thread vs the pipeline thread's finish()
            self._seg: _SegmentFile | None = None
            self._base: float | None = None  # monotonic time of encoder timestamp 0
            self._last_ts = -1
            self._closed = False

        def _open_segment(self, t: float) -> None:
            from agent.recording.segments import segment_path

            wall = t + self._clock.time() - self._clock.monotonic()
            final = segment_path(self._root, self._cfg.unit.id, wall)
            size = (self._cfg.camera.width, self._cfg.camera.height)
            self._seg = _SegmentFile(final, t, size, self._cfg.camera.fps, self._synced())

        def _finish_segment(self, end_t: float | None = None) -> None:
            seg, self._seg = self._seg, None
            if seg is not None and seg.frames:
                step = 1.0 / self._cfg.camera.fps
                self._finished.put(seg.finish(end_t if end_t is not None else seg.last_t + step))

        def outputframe(self, frame: bytes, keyframe: bool = True, timestamp: int | None = None,
                        packet: Any = None, audio: bool = False) -> None:
            if audio or frame is None or timestamp is None:
                return
            now = self._clock.monotonic()
            with self._lock:
                if self._closed:
                    return
                if self._base is None or timestamp < self._last_ts:  # a new encoder run starts at 0
                    self._base = now - timestamp / 1e6
                self._last_ts = timestamp
                t = self._base + timestamp / 1e6
                seg = self._seg
                if keyframe and (seg is None or t - seg.t0 >= self._cfg.recording.segment_seconds):
                    self._finish_segment(end_t=t)
                    self._open_segment(t)
                if self._seg is not None:
                    self._seg.mux(bytes(frame), t)

        def stop(self) -> None:
            """The encoder stopped (camera closed or reopened): publish what was recorded."""
            super().stop()
            with self._lock:
                self._finish_segment()
                self._base = None

        def finish(self) -> None:
            """Clean shutdown: publish the open segment and accept no more frames."""
            with self._lock:
                self._finish_segment()
                self._closed = True

    return SegmentOutput


def mask_callback(mapped_array: Any, masker: PrivacyMasker) -> Callable[[Any], None]:
    """picamera2 pre_callback blanking the privacy masks in the main stream before it is encoded."""

    def apply(request: Any) -> None:
        with mapped_array(request, "main") as m:
            masker.apply(m.array)

    return apply


class Picamera2Recorder:
    """Same interface as SegmentRecorder: write(frame) per frame (indexes finished segments, follows
    clock steps), close() publishes the open segment. Attaches to the source, open or not."""

    def __init__(self, cfg: Config, clock: Clock, index: SegmentIndex, masker: PrivacyMasker | None,
                 source: Picamera2Source, state: StateStore | None = None,
                 on_segment: Callable[[Segment], None] | None = None) -> None:
        pc2 = _import_picamera2()
        from agent.recording.segments import recordings_dir

        self._cfg, self._index, self._state, self._on_segment = cfg, index, state, on_segment
        root = recordings_dir(cfg.unit.data_dir)
        root.mkdir(parents=True, exist_ok=True)
        if removed := remove_stale_tmp(root):
            log.info("removed %d unfinished segment(s) left by a crash", removed)
        index.reconcile(root)
        self._timeline = Timeline(clock, index, uuid.uuid4().hex)
        self._finished: queue.Queue[Finished] = queue.Queue()
        rec = cfg.recording
        self.encoder = pc2.encoders.H264Encoder(
            bitrate=rec.bitrate_kbps * 1000, repeat=True,
            iperiod=max(1, round(cfg.camera.fps * rec.keyframe_interval_s)),
        )
        self.output = segment_output_class(pc2.outputs.Output)(
            cfg, clock, root, self._finished, lambda: self._timeline.synced
        )
        self.last_segment: Segment | None = None
        active = masker is not None and (masker.active or getattr(masker, "live", False))
        source.attach(self.encoder, self.output, mask_callback(pc2.MappedArray, masker) if active else None)

    def write(self, frame: Frame) -> None:
        step = self._timeline.step_seen(frame.wall, frame.t)
        if step is not None:
            self._drain()
            self._timeline.apply_step(step)
        self._drain()

    def _drain(self) -> None:
        while True:
            try:
                done = self._finished.get_nowait()
            except queue.Empty:
                return
            offset = self._timeline.offset_for(done.t0)
            segment = self._index.add(done.path, done.t0 + offset, done.t1 + offset, done.frames, done.size,
                                      sha256_file(done.path), done.synced and self._timeline.synced, done.t0,
                                      self._timeline.run_id)
            self._timeline.published(segment)
            self.last_segment = segment
            if self._state is not None:
                self._state.report("recording", state="recording", last_segment_at=segment.end,
                                   segment_seconds=self._cfg.recording.segment_seconds)
            if self._on_segment is not None:
                self._on_segment(segment)

    def close(self) -> Segment | None:
        self.output.finish()
        self._drain()
        if self._state is not None:
            self._state.report("recording", state="stopped",
                               last_segment_at=self.last_segment.end if self.last_segment else None,
                               segment_seconds=self._cfg.recording.segment_seconds)
        return self.last_segment
