"""Event files: the clip cut from the recorded segments by stream copy, and the peak-frame snapshots.

Called by agent.events.writer once the segments covering an event are closed; every file is written
under a temporary name, fsynced and renamed (agent.fsutil), so a final name always holds a whole file.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Protocol

import av
import cv2
import numpy as np

from agent.detection.masks import PrivacyMasker
from agent.errors import InputError
from agent.fsutil import atomic_write_bytes, publish, tmp_path_for
from agent.memory import release_free_heap

log = logging.getLogger(__name__)

JPEG_QUALITY = 85
BOX_COLOUR = (0, 0, 255)  # BGR red
END_SLACK_S = 0.002  # a frame exactly at the clip end (to the millisecond) belongs to the clip


class SegmentLike(Protocol):
    """What the cutter reads from agent.recording.segments.Segment."""

    path: Path
    start: float  # UTC epoch seconds of the first frame
    end: float


@dataclass(frozen=True)
class ClipInfo:
    start: float  # UTC epoch of the first frame in the clip (a keyframe at or before the asked start)
    end: float  # UTC epoch just after the last frame
    packets: int


def _open_footage(path: Path) -> av.container.InputContainer:
    """A segment or clip opened for reading. Opening decodes its first 7 frames with a decoder of its
    own (avformat_find_stream_info) and frees them into the heap: about 2 MB at 720p, given back here
    before the caller's own demuxing or decoding starts (issue 8: the event's peak memory)."""
    container = av.open(str(path))
    release_free_heap()
    return container


class _Cut:
    """Copies the packets of one video stream across segments, rebased onto one timeline."""

    def __init__(self, out: av.container.OutputContainer, start: float, end: float) -> None:
        self.out = out
        self.start = start
        self.end = end
        self.stream: av.video.stream.VideoStream | None = None
        self.pending: list[av.Packet] = []  # the GOP before the asked start
        self.started = False
        self.done = False
        self.offset = 0  # where the current segment starts on the output timeline (in tb units)
        self.tb: Fraction | None = None
        self.base: int | None = None  # output timeline value of the first written packet
        self.first_wall = 0.0
        self.last_wall = 0.0
        self.written = 0
        self.next_offset = 0
        self.origin: float | None = None  # UTC start of the first segment read

    def segment(self, seg: SegmentLike) -> None:
        with _open_footage(seg.path) as inp:
            vin = next((s for s in inp.streams if s.type == "video"), None)
            if vin is None:
                raise InputError(f"{seg.path}: segment has no video stream")
            if self.stream is None:
                self.stream = self.out.add_stream_from_template(vin)
                self.tb = vin.time_base
            if self.origin is None:
                self.origin = seg.start
            # A gap in the recording (camera reopened) stays a gap in the clip's timeline.
            self.offset = max(self.next_offset, round((seg.start - self.origin) / self.tb))
            seg_first: int | None = None
            for pkt in inp.demux(vin):
                if pkt.dts is None or pkt.pts is None:
                    continue
                if seg_first is None:
                    seg_first = pkt.pts
                self._packet(pkt, seg.start, seg_first, vin.time_base)
                if self.done:
                    return

    def _packet(self, pkt: av.Packet, seg_start: float, seg_first: int, tb: Fraction) -> None:
        assert self.tb is not None
        scale = tb / self.tb
        pts = self.offset + round((pkt.pts - seg_first) * scale)
        dts = self.offset + round((pkt.dts - seg_first) * scale)
        dur = round((pkt.duration or 0) * scale)
        self.next_offset = max(self.next_offset, pts + max(dur, 1))
        wall = seg_start + float((pkt.pts - seg_first) * tb)
        dts_wall = seg_start + float((pkt.dts - seg_first) * tb)
        pkt.pts, pkt.dts, pkt.time_base = pts, dts, self.tb
        if not self.started:
            if pkt.is_keyframe:
                self.pending = []
            self.pending.append(pkt)
            if wall + float(dur * self.tb) > self.start:
                self.started = True
                for p in self.pending:
                    self._write(p, seg_start, seg_first, tb)
                self.pending = []
            return
        if dts_wall > self.end + END_SLACK_S:
            self.done = True
            return
        self._write(pkt, seg_start, seg_first, tb)

    def _write(self, pkt: av.Packet, seg_start: float, seg_first: int, tb: Fraction) -> None:
        assert self.tb is not None and self.stream is not None
        if self.base is None:
            self.base = pkt.pts
            self.first_wall = self._wall(pkt.pts, seg_start)
        wall_end = self._wall(pkt.pts + max(pkt.duration or 0, 1), seg_start)
        self.last_wall = max(self.last_wall, wall_end)
        pkt.pts -= self.base
        pkt.dts -= self.base
        pkt.stream = self.stream
        self.out.mux(pkt)
        self.written += 1

    def _wall(self, value: int, seg_start: float) -> float:
        assert self.tb is not None
        return seg_start + float((value - self.offset) * self.tb)


def cut_clip(segments: Sequence[SegmentLike], start: float, end: float, final: Path) -> ClipInfo:
    """Stream-copy [start, end] (UTC epoch) from consecutive segments into an MP4 with the index first.

    The clip begins at the keyframe at or before `start`; no frame is re-encoded.
    """
    ordered = sorted(segments, key=lambda s: s.start)
    if not ordered:
        raise InputError(f"no recorded footage covers {start:.3f}..{end:.3f}")
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = tmp_path_for(final)
    try:
        with av.open(str(tmp), "w", format="mp4", options={"movflags": "+faststart"}) as out:
            cut = _Cut(out, start, end)
            for seg in ordered:
                try:
                    cut.segment(seg)
                except (av.error.FFmpegError, OSError) as err:
                    if getattr(err, "filename", None) != str(seg.path):
                        raise  # writing the clip failed (a full disk): no clip
                    # a damaged or vanished segment: a gap in the clip, not a lost event
                    log.warning("%s: segment unreadable, left out of the clip: %s", seg.path, err)
                if cut.done:
                    break
            if cut.written == 0:
                raise InputError(f"no recorded frames between {start:.3f} and {end:.3f}")
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    tmp.chmod(0o640)  # footage: not world-readable
    publish(tmp, final)
    release_free_heap()  # the demuxed packets and the last probe decode, before the snapshot's decode
    return ClipInfo(start=cut.first_wall, end=cut.last_wall, packets=cut.written)


def frame_at(path: Path, offset_s: float) -> np.ndarray | None:
    """The BGR frame of a clip or segment at `offset_s` seconds from its start (the last one if
    shorter). Seeks to the keyframe before it, so only one keyframe interval is decoded.

    Memory (issue 8): the decoder is closed and gone before the chosen frame is converted to BGR,
    so its picture pool (several 720p pictures) and the 2.6 MB BGR array are never held at once;
    the heap it freed is given back first (2-3 MB of chroma planes and tables below the mmap
    threshold would otherwise stay resident under the BGR array)."""
    best = _decoded_frame(path, offset_s)
    release_free_heap()
    return best.to_ndarray(format="bgr24") if best is not None else None


def _decoded_frame(path: Path, offset_s: float) -> av.VideoFrame | None:
    """The decoded picture at `offset_s`; the container and its decoder are released on return.
    One decoding thread: the default slice threads each keep their own context and pictures, for
    the 20-odd frames of one keyframe interval."""
    best = None
    with _open_footage(path) as c:
        stream = c.streams.video[0]
        stream.thread_type = "NONE"
        stream.thread_count = 1
        if offset_s > 0 and stream.time_base:
            try:
                c.seek(int(offset_s / stream.time_base), stream=stream, backward=True)
            except av.error.FFmpegError:
                c.seek(0, stream=stream)
        for vf in c.decode(stream):
            best = vf
            if vf.time is not None and vf.time >= offset_s - 1e-3:
                break
    return best


def encode_jpeg(image: np.ndarray) -> bytes:
    ok, buf = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
    if not ok:
        raise InputError("cannot encode snapshot as JPEG")
    return buf.tobytes()


def draw_boxes(image: np.ndarray, boxes: Sequence[Sequence[float]], copy: bool = True) -> np.ndarray:
    """`image` (a copy of it unless copy=False) with normalised [x, y, w, h] boxes drawn on it."""
    out = image.copy() if copy else image
    h, w = out.shape[:2]
    thick = max(1, round(min(w, h) / 240))
    for x, y, bw, bh in boxes:
        p1 = (round(x * (w - 1)), round(y * (h - 1)))
        p2 = (round((x + bw) * (w - 1)), round((y + bh) * (h - 1)))
        cv2.rectangle(out, p1, p2, BOX_COLOUR, thick)
    return out


def write_snapshots(image: np.ndarray, boxes: Sequence[Sequence[float]], masker: PrivacyMasker,
                    folder: Path, copy: bool = True) -> tuple[Path, Path]:
    """snapshot.jpg (privacy-masked peak frame) and snapshot_boxes.jpg (the same with motion boxes).
    copy=False: `image` is the caller's to give up (masked and drawn on in place), so no 720p frame
    is copied (2.6 MB each); the boxes are drawn after the plain snapshot is encoded."""
    if copy or not (image.flags.writeable and image.flags.c_contiguous):
        image = image.copy()
    masked = masker.apply(image)
    plain, boxed = folder / "snapshot.jpg", folder / "snapshot_boxes.jpg"
    atomic_write_bytes(plain, encode_jpeg(masked))
    atomic_write_bytes(boxed, encode_jpeg(draw_boxes(masked, boxes, copy=False)))
    return plain, boxed
