"""Retention and disk pressure: deletes footage by age and keeps a free-space reserve, so the disk
never fills and recording keeps going.

The reserve kept free is the larger of `retention.min_free_percent` and room for the clips of the
events in progress (`clip_reserve_bytes`: bitrate x max clip length, per event waiting plus the open
one); the event writer also calls `make_room` before it cuts a clip. Order under pressure: unheld
segments (oldest first) -> event folders already uploaded -> held segments -> events not yet
uploaded (each one lost: logged, and settled in the event ledger with reason
`deleted_before_upload`) -> the most recent segments. An event counts as pending unless the upload
pipeline says otherwise (see is_pending); the folder of an event not yet settled in the ledger is the
event writer's and never deleted here.
"""

from __future__ import annotations

import logging
import shutil
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import NamedTuple

from agent.clock import Clock
from agent.config import Config
from agent.db import transaction
from agent.events.custody import (
    active_holds,
    add_evidential_hold,
    add_hold,
    event_holds,
    open_holds,
    release_evidential_hold,
    remove_hold,
)
from agent.events.ledger import Fate, LossReason, open_ledger, settle, unsettled
from agent.events.outbox import EVENTS_DIR
from agent.recording.index import Segment, SegmentIndex
from agent.state import StateStore

log = logging.getLogger(__name__)

# holds belong to agent.events.custody; re-exported for their users
__all__ = ["DiskUsage", "Retention", "RetentionReport", "add_evidential_hold", "add_hold",
           "clip_reserve_bytes", "marker_is_pending", "release_evidential_hold", "remove_hold",
           "uploaded_marker"]

UPLOADED_DIR = "uploaded"
DAY_S = 86400.0
VBV_SLACK = 1.5  # libx264 keeps to maxrate over a 2 s buffer; a hardware encoder may overshoot a little
SNAPSHOTS_BYTES = 2_000_000  # two JPEGs of a 1080p frame and the record, generously


def clip_reserve_bytes(cfg: Config) -> int:
    """Disk space one event's files may need: its longest clip at the recording bitrate, snapshots."""
    ev = cfg.events
    clip_s = min(ev.max_clip_s, ev.pre_roll_s + ev.max_clip_s + ev.post_roll_s)
    return int(cfg.recording.bitrate_kbps * 125 * clip_s * VBV_SLACK) + SNAPSHOTS_BYTES




class DiskUsage(NamedTuple):
    total: int
    used: int
    free: int


DiskUsageFn = Callable[[Path], DiskUsage]


def uploaded_marker(data_dir: Path, event_id: str) -> Path:
    return data_dir / UPLOADED_DIR / event_id


def marker_is_pending(data_dir: Path) -> Callable[[str], bool]:
    """Default contract: an event is pending until <data_dir>/uploaded/<event_id> exists."""
    return lambda event_id: not uploaded_marker(data_dir, event_id).exists()


@dataclass
class RetentionReport:
    deleted_segments: int = 0
    deleted_events: int = 0
    events_lost: int = 0
    freed_bytes: int = 0


class Retention:
    """Run `run_once()` every minute or so (and after each segment when the disk is tight) from one
    thread; it owns no thread itself."""

    def __init__(self, cfg: Config, clock: Clock, index: SegmentIndex, conn: sqlite3.Connection,
                 state: StateStore | None = None, is_pending: Callable[[str], bool] | None = None,
                 disk_usage: DiskUsageFn | None = None) -> None:
        self._cfg = cfg
        self._clock = clock
        self._index = index
        self._conn = conn
        self._state = state
        self._data = cfg.unit.data_dir
        self._is_pending = is_pending or marker_is_pending(self._data)
        self._disk_usage = disk_usage or (lambda p: DiskUsage(*shutil.disk_usage(p)))
        self.deleted_total = 0
        open_holds(conn)
        open_ledger(conn)
        ev = cfg.events
        # An event being tracked may still need this much footage to cut its clip.
        segment_s = cfg.recording.segment_seconds
        self._protect_recent_s = ev.pre_roll_s + ev.max_clip_s + ev.post_roll_s + 2 * segment_s
        self.clip_reserve = clip_reserve_bytes(cfg)

    # --- holds and events ---

    def _holds(self, now: float) -> list[tuple[float, float]]:
        return active_holds(self._conn, now)

    @staticmethod
    def _held(seg: Segment, holds: list[tuple[float, float]]) -> bool:
        return any(seg.end > s and seg.start < e for s, e in holds)

    def _event_dirs(self) -> list[Path]:
        """Event folders, oldest first; never one the event writer is still filling (not yet settled in
        the ledger): it settles that event itself, partial or lost, if there is no room for it."""
        root = self._data / EVENTS_DIR
        if not root.is_dir():
            return []
        folders = [p for p in root.iterdir() if p.is_dir()]
        writing = unsettled(self._conn)  # read after the listing: each folder's event was entered before it
        kept = (p for p in folders if p.name not in writing)
        return sorted(kept, key=lambda p: (p.stat().st_mtime, p.name))

    # --- deletion ---

    def _delete_segment(self, seg: Segment, report: RetentionReport) -> None:
        try:
            size = seg.path.stat().st_size
            seg.path.unlink()
        except FileNotFoundError:
            size = 0
        self._index.remove(seg.id)
        today = datetime.fromtimestamp(self._clock.time(), UTC).date().isoformat()
        if seg.path.parent.name < today:
            try:  # a past day's folder, once empty (the recorder may be about to write in today's)
                seg.path.parent.rmdir()
            except OSError:
                pass
        report.deleted_segments += 1
        report.freed_bytes += size

    def _delete_event(self, folder: Path, report: RetentionReport, lost: bool) -> None:
        size = 0
        for f in folder.rglob("*"):
            try:
                size += f.stat().st_size if f.is_file() else 0
            except FileNotFoundError:  # the writer's own make_room may be deleting it too
                pass
        shutil.rmtree(folder, ignore_errors=True)
        report.deleted_events += 1
        report.freed_bytes += size
        if lost:
            report.events_lost += 1
            with transaction(self._conn):
                settle(self._conn, folder.name, Fate.LOST, self._clock.time(),
                       LossReason.DELETED_BEFORE_UPLOAD, "disk full: deleted before it was uploaded")
            log.error("disk full: deleted event %s before it was uploaded (event lost)", folder.name)

    def reserve_bytes(self) -> int:
        """Free space to keep: the configured percentage, or room for the clips of the events in
        progress (those waiting for their clip plus one open), whichever is larger."""
        total = self._disk_usage(self._data).total
        percent = total * self._cfg.retention.min_free_percent / 100.0
        return int(max(percent, self.clip_reserve * (1 + event_holds(self._conn))))

    def _short_of_space(self) -> bool:
        return self._disk_usage(self._data).free < self.reserve_bytes()

    def make_room(self, need_bytes: int) -> bool:
        """Before a clip is cut (the event writer's thread, its own Retention): delete unheld old
        segments and uploaded events, oldest first, until `need_bytes` are free; never a held segment
        or an event not yet uploaded. True if the room is there."""
        report = RetentionReport()
        now = self._clock.time()
        holds = self._holds(now)
        for kind, item in self._candidates(now, holds):
            if self._disk_usage(self._data).free >= need_bytes:
                break
            if kind == "segment" and not self._held(item, holds) and item.end < now - self._protect_recent_s:
                self._delete_segment(item, report)
            elif kind == "event":
                self._delete_event(item, report, lost=False)
        if report.deleted_segments or report.deleted_events:
            log.info("made room for a clip: deleted %d segment(s), %d uploaded event(s), freed %d bytes",
                     report.deleted_segments, report.deleted_events, report.freed_bytes)
        self.deleted_total += report.deleted_segments
        return self._disk_usage(self._data).free >= need_bytes

    def _by_age(self, now: float, holds: list[tuple[float, float]], report: RetentionReport) -> None:
        cutoff = now - self._cfg.retention.max_age_days * DAY_S
        for seg in self._index.older_than(cutoff):
            if not self._held(seg, holds):
                self._delete_segment(seg, report)
        for folder in self._event_dirs():
            if folder.stat().st_mtime < cutoff and not self._is_pending(folder.name):
                self._delete_event(folder, report, lost=False)

    def _candidates(self, now: float, holds: list[tuple[float, float]]):
        """Things to delete under disk pressure, in order; each yields a deletion thunk."""
        recent = now - self._protect_recent_s
        segments = self._index.all()
        old = [s for s in segments if s.end < recent]
        events = self._event_dirs()
        pending = {f.name: self._is_pending(f.name) for f in events}
        for seg in (s for s in old if not self._held(s, holds)):
            yield ("segment", seg)
        for folder in (f for f in events if not pending[f.name]):
            yield ("event", folder)
        for seg in (s for s in old if self._held(s, holds)):
            yield ("segment", seg)
        for folder in (f for f in events if pending[f.name]):
            yield ("lost", folder)
        for seg in (s for s in segments if s.end >= recent):
            yield ("segment", seg)

    def run_once(self) -> RetentionReport:
        now = self._clock.time()
        report = RetentionReport()
        holds = self._holds(now)
        self._by_age(now, holds, report)
        if self._short_of_space():
            for kind, item in self._candidates(now, holds):
                if kind == "segment":
                    self._delete_segment(item, report)
                else:
                    self._delete_event(item, report, lost=(kind == "lost"))
                if not self._short_of_space():
                    break
            else:
                log.error("disk still short of the free-space reserve after deleting all footage")
        if report.deleted_segments or report.deleted_events:
            log.info("retention: deleted %d segment(s), %d event(s), freed %d bytes",
                     report.deleted_segments, report.deleted_events, report.freed_bytes)
        self.deleted_total += report.deleted_segments
        self._report_state()
        return report

    def _report_state(self) -> None:
        if self._state is None:
            return
        usage = self._disk_usage(self._data)
        oldest = self._index.oldest()
        self._state.report("retention", oldest_footage_at=oldest[0].start if oldest else None,
                           free_bytes=usage.free, total_bytes=usage.total,
                           deleted_segments=self.deleted_total)
