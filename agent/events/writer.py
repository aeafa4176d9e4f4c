"""Event writer thread: turns closed events into files and an outbox record, off the capture path.

Receives ClosedEvents from the analysis stage, waits until the segments covering each clip are
closed, cuts the clip and snapshots (agent.events.clips), publishes the EventRecord (agent.events.outbox).
"""

from __future__ import annotations

import logging
import queue
import sqlite3
import threading
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from agent import __version__
from agent.clock import Clock, iso_utc
from agent.config import Config
from agent.db import connect, db_path
from agent.detection.masks import PrivacyMasker
from agent.errors import AgentError
from agent.events.clips import ClipInfo, SegmentLike, cut_clip, frame_at, write_snapshots
from agent.events.journal import forget, left_behind, note, open_journal, recovered
from agent.events.outbox import EVENTS_DIR, OUTBOX_DIR, EventFile, EventRecord, publish_event
from agent.events.tracker import Event, on_timeline
from agent.fsutil import sha256_file
from agent.recording.index import SegmentIndex
from agent.recording.retention import add_hold, remove_hold, uploaded_marker
from agent.state import StateStore

log = logging.getLogger(__name__)

Covering = Callable[[sqlite3.Connection, float, float], Sequence[SegmentLike]]
CONTENT_TYPES = {"clip": "video/mp4", "snapshot": "image/jpeg", "snapshot_boxes": "image/jpeg"}


@dataclass
class ClosedEvent:
    """An event the tracker closed, with the full-resolution image of its peak frame."""

    event: Event
    image: np.ndarray | None
    deadline: float = 0.0  # monotonic time after which the clip is cut with whatever footage exists
    hold_id: int | None = None  # retention hold on the footage while the clip waits to be cut
    extra: dict = field(default_factory=dict)


def segment_index_covering(conn: sqlite3.Connection, start: float, end: float) -> Sequence[SegmentLike]:
    """The recording engineer's index: closed segments overlapping [start, end] (UTC epoch)."""
    return SegmentIndex(conn).covering(start, end)


class EventWriter:
    """Thread: `submit()` closed events (from the analysis thread); `close_input()` once no more
    will come; the thread exits when all are published. `recording_done` tells it the recorder has
    closed its last segment, so pending clips are cut at once with the footage there is."""

    def __init__(self, cfg: Config, data_dir: Path, clock: Clock, recording_done: threading.Event,
                 covering: Covering = segment_index_covering, maxsize: int = 64,
                 masker: PrivacyMasker | None = None) -> None:
        self._cfg = cfg
        self._data_dir = data_dir
        self._clock = clock
        self._recording_done = recording_done
        self._covering = covering
        self._queue: queue.Queue[ClosedEvent | Event | None] = queue.Queue(maxsize)
        self._run_id = uuid.uuid4().hex  # journal entries of this run
        self._masker = masker or PrivacyMasker([z.polygon for z in cfg.privacy.masks])
        self._thread = threading.Thread(target=self._run, name="event-writer", daemon=True)
        self._run_after = _last_segment_id(data_dir)  # segments of this run have larger ids
        self.published: list[Path] = []  # outbox records written (read after join)
        # Called on the writer thread after each publish (e.g. StatusService.trigger); must not block.
        self.listeners: list[Callable[[EventRecord], None]] = []
        self.failures = 0

    def start(self) -> None:
        self._thread.start()

    def submit(self, closed: ClosedEvent) -> None:
        ev = closed.event
        wait = (ev.clip_end_t - ev.clip_start_t) + 3 * self._cfg.recording.segment_seconds + 30.0
        closed.deadline = self._clock.monotonic() + wait
        self._queue.put(closed)

    def note_open(self, ev: Event) -> None:
        """An event just opened (analysis thread): journalled, so a crash does not lose it."""
        self._queue.put(ev)

    def close_input(self) -> None:
        self._queue.put(None)

    def join(self, timeout: float | None = None) -> None:
        self._thread.join(timeout)

    def is_alive(self) -> bool:
        return self._thread.is_alive()

    def _run(self) -> None:
        conn = connect(db_path(self._data_dir))
        state = StateStore(conn, self._clock)
        pending: list[ClosedEvent] = []
        more = True
        try:
            open_journal(conn)
            self._recover(conn, state)
            while more or pending:
                if more:
                    try:
                        item = self._queue.get(timeout=0.5 if pending else 1.0)
                    except queue.Empty:
                        item = False
                    if item is None:
                        more = False
                    elif item is not False:
                        self._take(conn, item, pending)
                elif pending:
                    self._recording_done.wait(0.5)
                pending = [c for c in pending if not self._try_write(conn, state, c)]
        finally:
            conn.close()

    def _take(self, conn: sqlite3.Connection, item: ClosedEvent | Event, pending: list[ClosedEvent]) -> None:
        """Journal an opened event, or journal, hold and queue a closed one. A database error (full
        disk, long lock) costs only the journal entry or the hold: the writer thread lives on."""
        try:
            if isinstance(item, Event):
                note(conn, self._run_id, self._on_timeline(conn, item), closed=False)
                return
            pending.append(item)
            item.event = self._on_timeline(conn, item.event)
            note(conn, self._run_id, item.event, closed=True)
            self._hold(conn, item)
        except sqlite3.Error as err:
            log.error("event journal: %s (the event is still written)", err)

    def _try_write(self, conn: sqlite3.Connection, state: StateStore, closed: ClosedEvent) -> bool:
        """Write the event if its footage is ready (or will never be); True when done with it."""
        late = self._recording_done.is_set() or self._clock.monotonic() >= closed.deadline
        try:
            ev = closed.event = self._on_timeline(conn, closed.event)
            # Only this run's footage: an earlier run's may sit just before in time after a clock reset.
            segs = [s for s in self._covering(conn, ev.clip_start_wall, ev.clip_end_wall)
                    if getattr(s, "id", self._run_after + 1) > self._run_after]
        except sqlite3.Error as err:  # e.g. a full disk: try again, unless it is time to give up waiting
            log.error("event %s: cannot look up its footage: %s", closed.event.event_id, err)
            if not late:
                return False
            ev, segs = closed.event, []
        covered = bool(segs) and max(s.end for s in segs) >= ev.clip_end_wall - 0.05
        if not (covered or late):
            return False
        try:
            path = self.write(closed, segs)
        except (AgentError, OSError) as err:
            self.failures += 1
            log.error("event %s: could not be written: %s", ev.event_id, err)
            return True
        except Exception:  # a bug must not stop the events after this one
            self.failures += 1
            log.exception("event %s: could not be written", ev.event_id)
            return True
        finally:
            self._release(conn, closed)
        self.published.append(path)
        try:
            self._report(state, ev)
        except sqlite3.Error as err:
            log.error("event %s: motion state not updated: %s", ev.event_id, err)
        return True

    def _release(self, conn: sqlite3.Connection, closed: ClosedEvent) -> None:
        """Drop the journal entry and the hold of a finished event (left behind, both are harmless:
        the next start sees the record published, and the hold expires by itself)."""
        try:
            forget(conn, closed.event.event_id)
            if closed.hold_id is not None:
                remove_hold(conn, closed.hold_id)
        except sqlite3.Error as err:
            log.error("event %s: journal entry or hold not released: %s", closed.event.event_id, err)

    def _recover(self, conn: sqlite3.Connection, state: StateStore) -> None:
        """Publish the events an earlier run journalled but never published (it was killed)."""
        for ev, _closed in left_behind(conn, self._run_id):
            record = self._data_dir / OUTBOX_DIR / f"{ev.event_id}.json"
            if record.exists() or uploaded_marker(self._data_dir, ev.event_id).exists():
                forget(conn, ev.event_id)  # published just before the crash: nothing to redo
                continue
            cap = ev.clip_start_wall + self._cfg.events.max_clip_s
            segs = [s for s in self._covering(conn, ev.clip_start_wall, cap)
                    if getattr(s, "id", 0) <= self._run_after]
            rec = recovered(ev, min(cap, max((s.end for s in segs), default=ev.end_wall)))
            log.warning("event %s was left unpublished by an earlier run; publishing it now", ev.event_id)
            closed = ClosedEvent(rec, None, extra={"recovered": True})
            try:
                path = self.write(closed, [s for s in segs if s.start < rec.clip_end_wall])
            except Exception as err:  # one bad leftover must not stop the unit
                self.failures += 1
                log.error("event %s: could not be recovered: %s", ev.event_id, err)
            else:
                self.published.append(path)
                self._report(state, rec)
            finally:
                forget(conn, ev.event_id)

    def _on_timeline(self, conn: sqlite3.Connection, ev: Event) -> Event:
        """Map the event's frame times to UTC as the recorder did for this run's segments."""
        first = conn.execute(
            "SELECT start, mono_start FROM segments WHERE id > ? AND mono_start IS NOT NULL "
            "ORDER BY mono_start LIMIT 1", (self._run_after,)).fetchone()
        if first is None:
            return ev

        def wall_of(t: float) -> float:
            row = conn.execute(
                "SELECT start, mono_start FROM segments WHERE id > ? AND mono_start IS NOT NULL "
                "AND mono_start <= ? ORDER BY mono_start DESC LIMIT 1", (self._run_after, t)).fetchone()
            start, mono = row if row is not None else first
            return start + (t - mono)

        return on_timeline(ev, wall_of)

    def _hold(self, conn: sqlite3.Connection, closed: ClosedEvent) -> None:
        """Protect the event's footage from retention until its clip is cut (expires on its own)."""
        ev = closed.event
        expires = self._clock.time() + 24 * 3600.0
        closed.hold_id = add_hold(conn, ev.clip_start_wall - 5.0, ev.clip_end_wall + 5.0,
                                  f"event {ev.event_id}", expires)

    def write(self, closed: ClosedEvent, segs: Sequence[SegmentLike]) -> Path:
        """Cut the clip, write the snapshots, publish the record; return the outbox path."""
        ev = closed.event
        folder = self._data_dir / EVENTS_DIR / ev.event_id
        folder.mkdir(parents=True, exist_ok=True)
        files: list[Path] = []
        extra = {"close_reason": ev.reason.value if ev.reason else None, **closed.extra}
        clip: ClipInfo | None = None
        try:
            clip = cut_clip([self._resolve(s) for s in segs], ev.clip_start_wall, ev.clip_end_wall,
                            folder / "clip.mp4")
            files.append(folder / "clip.mp4")
        except AgentError as err:  # no footage (recording gap, disk pressure): keep the snapshots
            log.warning("event %s: no clip: %s", ev.event_id, err)
            extra["clip_missing"] = str(err)
        image = closed.image
        if image is None and clip is not None:  # a recovered event: take the peak from the footage
            image = frame_at(folder / "clip.mp4", ev.peak_wall - clip.start)
        if image is not None:
            files.extend(write_snapshots(image, ev.peak_boxes, self._masker, folder))
        if not files:
            raise AgentError("neither clip nor snapshot could be made")
        record = self._record(ev, clip, files, segs, extra)
        path = publish_event(self._data_dir, record)
        for listener in self.listeners:
            listener(record)
        return path

    def _resolve(self, seg: SegmentLike) -> SegmentLike:
        path = Path(seg.path)
        if path.is_absolute():
            return seg
        return _Seg(self._data_dir / path, seg.start, seg.end)

    def _record(self, ev: Event, clip: ClipInfo | None, files: list[Path], segs: Sequence[SegmentLike],
                extra: dict) -> EventRecord:
        entries = []
        for path in files:
            role = path.stem
            entries.append(EventFile(role=role, path=path.relative_to(self._data_dir).as_posix(),
                                     size=path.stat().st_size, sha256=sha256_file(path),
                                     content_type=CONTENT_TYPES[role]))
        synced = bool(segs) and all(bool(getattr(s, "clock_synced", False)) for s in segs)
        return EventRecord(
            event_id=ev.event_id, unit_id=self._cfg.unit.id, site=self._cfg.unit.site,
            start=iso_utc(ev.start_wall), end=iso_utc(ev.end_wall),
            clip_start=iso_utc(clip.start if clip else ev.clip_start_wall),
            clip_end=iso_utc(clip.end if clip else ev.clip_end_wall),
            peak_score=round(ev.peak_score, 6), peak_time=iso_utc(ev.peak_wall), boxes=ev.peak_boxes,
            clock_synced=synced, software_version=__version__, created_at=iso_utc(self._clock.time()),
            files=entries, previous_event_id=ev.previous_event_id, extra=extra,
        )

    def _report(self, state: StateStore, ev: Event) -> None:
        today = datetime.fromtimestamp(ev.start_wall, UTC).date().isoformat()
        prev = state.read("motion")
        count = 0
        if prev is not None and prev.state.get("day") == today:
            count = int(prev.state.get("events_today") or 0)
        state.report("motion", last_event_at=iso_utc(ev.start_wall), events_today=count + 1, day=today)


def _last_segment_id(data_dir: Path) -> int:
    conn = connect(db_path(data_dir))
    try:
        SegmentIndex(conn)  # creates the table on a new unit
        return int(conn.execute("SELECT coalesce(max(id), 0) FROM segments").fetchone()[0])
    finally:
        conn.close()


@dataclass(frozen=True)
class _Seg:
    path: Path
    start: float
    end: float
