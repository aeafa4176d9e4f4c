"""Making one event's files: the clip and snapshots from its footage, then the published record.

Called by agent.events.writer once the event's footage is ready (or will never be). What cannot be
made (no footage, a full disk) is left out and the record is marked partial, down to the record
alone; only an error writing the record itself is raised, so the writer can retry or count it lost.
"""

from __future__ import annotations

import errno
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from agent.clock import Clock
from agent.config import Config
from agent.detection.masks import PrivacyMasker
from agent.errors import AgentError
from agent.events.clips import ClipInfo, SegmentLike, cut_clip, frame_at, write_snapshots
from agent.events.outbox import EVENTS_DIR, EventRecord, publish_event
from agent.events.record import build_record
from agent.events.tracker import Event
from agent.memory import release_free_heap

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class _Seg:
    path: Path
    start: float
    end: float


class EventFiles:
    """Writes an event's files under <data_dir>/events/<id>/ and publishes its outbox record."""

    def __init__(self, cfg: Config, data_dir: Path, clock: Clock, masker: PrivacyMasker) -> None:
        self._cfg = cfg
        self._data_dir = data_dir
        self._clock = clock
        self._masker = masker
        # Called after each publish (e.g. StatusService.trigger); must not block.
        self.listeners: list[Callable[[EventRecord], None]] = []

    def write(self, ev: Event, image: np.ndarray | None, segs: Sequence[SegmentLike],
              extra_in: dict[str, Any]) -> tuple[Path, EventRecord]:
        """Cut the clip, write the snapshots (from `image`, else the footage), publish the record;
        return the outbox path and the record. OSError: the record itself could not be written."""
        folder = self._data_dir / EVENTS_DIR / ev.event_id
        files: list[Path] = []
        extra = {"close_reason": ev.reason.value if ev.reason else None, **extra_in}
        clip: ClipInfo | None = None
        resolved = [self._resolve(s) for s in segs]
        try:
            folder.mkdir(parents=True, exist_ok=True)
            clip = cut_clip(resolved, ev.clip_start_wall, ev.clip_end_wall, folder / "clip.mp4")
            files.append(folder / "clip.mp4")
        except (AgentError, OSError) as err:  # no footage (a gap, a power cut), or a full disk
            log.warning("event %s: no clip: %s", ev.event_id, err)
            extra["clip_missing"] = why(err)
        try:
            own = image is None  # a frame decoded here is ours to mask and draw on in place
            if image is None:
                image = self._peak_frame(ev, clip, resolved)
            if image is not None:
                files.extend(write_snapshots(image, ev.peak_boxes, self._masker, folder, copy=not own))
            else:
                extra["snapshot_missing"] = "no footage to take it from"
        except (AgentError, OSError) as err:
            log.warning("event %s: no snapshots: %s", ev.event_id, err)
            extra["snapshot_missing"] = why(err)
        partial = "clip_missing" in extra or "snapshot_missing" in extra
        record = build_record(self._cfg, self._data_dir, self._clock, ev, clip, files, segs, extra, partial)
        path = publish_event(self._data_dir, record)
        image = None
        release_free_heap()  # the clip cut and snapshot decode are over (issue 8 memory)
        for listener in self.listeners:
            listener(record)
        return path, record

    def _peak_frame(self, ev: Event, clip: ClipInfo | None, segs: Sequence[SegmentLike]) -> np.ndarray | None:
        """The peak frame from the footage: the clip if there is one, else the segment holding it."""
        if clip is not None:
            return frame_at(self._data_dir / EVENTS_DIR / ev.event_id / "clip.mp4", ev.peak_wall - clip.start)
        for seg in segs:
            if seg.start <= ev.peak_wall < seg.end or seg is segs[-1]:
                try:
                    return frame_at(Path(seg.path), max(0.0, ev.peak_wall - seg.start))
                except Exception as err:  # an unreadable segment: no snapshot (av errors are OSErrors)
                    log.warning("event %s: peak frame unreadable in %s: %s", ev.event_id, seg.path, err)
                    return None
        return None

    def _resolve(self, seg: SegmentLike) -> SegmentLike:
        path = Path(seg.path)
        return seg if path.is_absolute() else _Seg(self._data_dir / path, seg.start, seg.end)


def why(err: Exception) -> str:
    """The reason recorded for a missing file: a full disk said plainly."""
    if isinstance(err, OSError) and err.errno in (errno.ENOSPC, errno.EDQUOT):
        return f"disk full: {err.strerror}"
    return str(err)[:200]
