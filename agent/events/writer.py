"""Event writer thread: turns closed events into files and an outbox record, off the capture path.

Receives ClosedEvents from the analysis stage, waits until the segments covering each clip are
closed, cuts the clip and snapshots (agent.events.clips), publishes the EventRecord (agent.events.outbox).
"""

from __future__ import annotations

import errno
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
from agent.db import connect, db_path, transaction
from agent.detection.masks import PrivacyMasker
from agent.errors import AgentError
from agent.events.clips import ClipInfo, SegmentLike, cut_clip, frame_at, write_snapshots
from agent.events.journal import forget, left_behind, note, open_journal, recovered
from agent.events.ledger import Fate, LossReason, settle
from agent.events.outbox import EVENTS_DIR, OUTBOX_DIR, EventFile, EventRecord, publish_event, read_event
from agent.events.tracker import Event, on_timeline
from agent.fsutil import sha256_file
from agent.recording.gaps import gaps_between
from agent.recording.index import SegmentIndex
from agent.recording.retention import EVENT_HOLD, add_hold, remove_hold, uploaded_marker
from agent.state import StateStore

log = logging.getLogger(__name__)

Covering = Callable[[sqlite3.Connection, float, float], Sequence[SegmentLike]]
RoomMaker = Callable[[sqlite3.Connection], Callable[[int], bool]]  # per thread: need_bytes -> room made
RECORD_ATTEMPTS = 6  # a record that cannot be written (full disk) is tried this often ...
RECORD_RETRY_S = 10.0  # ... this far apart (retention frees space meanwhile) before it counts as lost
CONTENT_TYPES = {"clip": "video/mp4", "snapshot": "image/jpeg", "snapshot_boxes": "image/jpeg"}


@dataclass
class ClosedEvent:
    """An event the tracker closed, with the full-resolution image of its peak frame."""

    event: Event
    image: np.ndarray | None
    deadline: float = 0.0  # monotonic time after which the clip is cut with whatever footage exists
    hold_id: int | None = None  # retention hold on the footage while the clip waits to be cut
    extra: dict = field(default_factory=dict)
    segments: Sequence[SegmentLike] | None = None  # fixed footage (an event an earlier run left)
    attempts: int = 0  # tries to publish the record (a full disk)
    retry_at: float = 0.0  # monotonic


def segment_index_covering(conn: sqlite3.Connection, start: float, end: float) -> Sequence[SegmentLike]:
    """The recording engineer's index: closed segments overlapping [start, end] (UTC epoch)."""
    return SegmentIndex(conn).covering(start, end)


class EventWriter:
    """Thread: `submit()` closed events (from the analysis thread); `close_input()` once no more
    will come; the thread exits when all are published. `recording_done` tells it the recorder has
    closed its last segment, so pending clips are cut at once with the footage there is."""

    def __init__(self, cfg: Config, data_dir: Path, clock: Clock, recording_done: threading.Event,
                 covering: Covering = segment_index_covering, maxsize: int = 64,
                 masker: PrivacyMasker | None = None, room: RoomMaker | None = None) -> None:
        self._cfg = cfg
        self._data_dir = data_dir
        self._clock = clock
        self._recording_done = recording_done
        self._covering = covering
        self._room = room
        self._make_room: Callable[[int], bool] = lambda _need: True
        self._unsettled: list[tuple[ClosedEvent, Fate, LossReason | None, str]] = []
        self._queue: queue.Queue[ClosedEvent | Event | None] = queue.Queue(maxsize)
        self._run_id = uuid.uuid4().hex  # journal entries of this run
        self._masker = masker or PrivacyMasker([z.polygon for z in cfg.privacy.masks])
        self._thread = threading.Thread(target=self._run, name="event-writer", daemon=True)
        self._run_after = _last_segment_id(data_dir)  # segments of this run have larger ids
        self.published: list[Path] = []  # outbox records written (read after join)
        # Called on the writer thread after each publish (e.g. StatusService.trigger); must not block.
        self.listeners: list[Callable[[EventRecord], None]] = []
        self.failures = 0  # events counted lost

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
            if self._room is not None:
                self._make_room = self._room(conn)
            pending.extend(self._recover(conn))
            idle_tries = 0
            while more or pending or self._unsettled:
                if more:
                    try:
                        item = self._queue.get(timeout=0.5 if pending else 1.0)
                    except queue.Empty:
                        item = False
                    if item is None:
                        more = False
                    elif item is not False:
                        self._take(conn, item, pending)
                else:
                    self._recording_done.wait(0.5)
                pending = [c for c in pending if not self._try_write(conn, state, c)]
                self._retry_settle(conn)
                if not (more or pending) and self._unsettled:  # only fates left to record: a while
                    idle_tries += 1
                    if idle_tries > 10:
                        log.error("%d event fate(s) not recorded; the journal keeps them for the next "
                                  "start", len(self._unsettled))
                        break
                    threading.Event().wait(1.0)
        finally:
            conn.close()

    def _take(self, conn: sqlite3.Connection, item: ClosedEvent | Event, pending: list[ClosedEvent]) -> None:
        """Journal an opened event, or journal, hold and queue a closed one. A database error (full
        disk, long lock) costs only the journal entry or the hold: the writer thread lives on."""
        try:
            if isinstance(item, Event):
                note(conn, self._run_id, self._on_timeline(conn, item), False, self._clock.time())
                return
            pending.append(item)
            item.event = self._on_timeline(conn, item.event)
            note(conn, self._run_id, item.event, True, self._clock.time())
            self._hold(conn, item)
        except sqlite3.Error as err:
            log.error("event journal: %s (the event is still written)", err)

    def _try_write(self, conn: sqlite3.Connection, state: StateStore, closed: ClosedEvent) -> bool:
        """Write the event if its footage is ready (or will never be); True when done with it (it is
        then settled in the ledger: published, partial or lost with a reason)."""
        now = self._clock.monotonic()
        late = self._recording_done.is_set() or now >= closed.deadline
        if now < closed.retry_at and not self._recording_done.is_set():
            return False
        try:
            segs = closed.segments
            if segs is None:
                ev = closed.event = self._on_timeline(conn, closed.event)
                # Only this run's footage: an earlier run's may sit just before in time after a clock reset.
                segs = [s for s in self._covering(conn, ev.clip_start_wall, ev.clip_end_wall)
                        if getattr(s, "id", self._run_after + 1) > self._run_after]
        except sqlite3.Error as err:  # e.g. a full disk: try again, unless it is time to give up waiting
            log.error("event %s: cannot look up its footage: %s", closed.event.event_id, err)
            if not late:
                return False
            segs = []
        ev = closed.event
        covered = bool(segs) and max(s.end for s in segs) >= ev.clip_end_wall - 0.05
        if not (covered or late or closed.segments is not None):
            return False
        try:
            self._make_room(sum(int(getattr(s, "size", 0) or 0) for s in segs) + 2_000_000)
        except (OSError, sqlite3.Error) as err:
            log.error("event %s: could not make room for its clip: %s", ev.event_id, err)
        try:
            path, record = self.write(closed, segs)
        except OSError as err:  # not even the record could be written (a full disk)
            closed.attempts += 1
            if closed.attempts < RECORD_ATTEMPTS and not self._recording_done.is_set():
                log.error("event %s: record not written (%s); trying again in %.0f s", ev.event_id, err,
                          RECORD_RETRY_S)
                closed.retry_at = now + RECORD_RETRY_S
                return False
            full = err.errno in (errno.ENOSPC, errno.EDQUOT)
            self._lost(conn, closed, LossReason.DISK_FULL if full else LossReason.WRITE_ERROR, err)
            return True
        except Exception as err:  # a bug must not stop the events after this one
            log.exception("event %s: could not be written", ev.event_id)
            self._lost(conn, closed, LossReason.WRITE_ERROR, err)
            return True
        self.published.append(path)
        self._settle(conn, closed, Fate.PARTIAL if record.partial else Fate.PUBLISHED)
        try:
            self._report(state, ev)
        except sqlite3.Error as err:
            log.error("event %s: motion state not updated: %s", ev.event_id, err)
        return True

    def _lost(self, conn: sqlite3.Connection, closed: ClosedEvent, reason: LossReason,
              err: Exception) -> None:
        self.failures += 1
        log.error("event %s LOST (%s): %s", closed.event.event_id, reason.value, err)
        self._settle(conn, closed, Fate.LOST, reason, str(err))

    def _settle(self, conn: sqlite3.Connection, closed: ClosedEvent, fate: Fate,
                reason: LossReason | None = None, detail: str = "") -> None:
        """Enter the event's fate in the ledger, forget its journal entry and release its hold in one
        transaction. If the database cannot be written (full disk) it is retried; if the agent dies
        first, the journal entry makes the next start settle it."""
        ev_id = closed.event.event_id
        try:
            with transaction(conn):
                settle(conn, ev_id, fate, self._clock.time(), reason, detail)
                forget(conn, ev_id)
                if closed.hold_id is not None:
                    remove_hold(conn, closed.hold_id)
        except sqlite3.Error as err:
            log.error("event %s: fate %s not recorded yet (%s); will retry", ev_id, fate.value, err)
            self._unsettled.append((closed, fate, reason, detail))

    def _retry_settle(self, conn: sqlite3.Connection) -> None:
        waiting, self._unsettled = self._unsettled, []
        for closed, fate, reason, detail in waiting:
            self._settle(conn, closed, fate, reason, detail)

    def _recover(self, conn: sqlite3.Connection) -> list[ClosedEvent]:
        """The events an earlier run journalled but never settled (it was killed): settled at once if
        their record was published, else queued to be written from the footage that run recorded."""
        out = []
        for ev, _closed in left_behind(conn, self._run_id):
            record = self._data_dir / OUTBOX_DIR / f"{ev.event_id}.json"
            if record.exists() or uploaded_marker(self._data_dir, ev.event_id).exists():
                partial = False  # published just before the crash: nothing to redo
                try:
                    partial = read_event(record).partial if record.exists() else False
                except AgentError:
                    pass
                self._settle(conn, ClosedEvent(ev, None), Fate.PARTIAL if partial else Fate.PUBLISHED)
                continue
            cap = ev.clip_start_wall + self._cfg.events.max_clip_s
            segs = [s for s in self._covering(conn, ev.clip_start_wall, cap)
                    if getattr(s, "id", 0) <= self._run_after]
            rec = recovered(ev, min(cap, max((s.end for s in segs), default=ev.end_wall)))
            log.warning("event %s was left unpublished by an earlier run; publishing it now", ev.event_id)
            closed = ClosedEvent(rec, None, extra={"recovered": True},
                                 segments=[s for s in segs if s.start < rec.clip_end_wall])
            gaps = gaps_between(conn, rec.clip_start_wall, rec.clip_end_wall)
            if gaps:
                closed.extra["gaps"] = [[iso_utc(g.start), iso_utc(g.end), g.reason] for g in gaps]
            try:
                self._hold(conn, closed)
            except sqlite3.Error as err:
                log.error("event %s: footage not held: %s", ev.event_id, err)
            out.append(closed)
        return out

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
                                  EVENT_HOLD + ev.event_id, expires)

    def write(self, closed: ClosedEvent, segs: Sequence[SegmentLike]) -> tuple[Path, EventRecord]:
        """Cut the clip, write the snapshots, publish the record; return the outbox path and record.
        What cannot be made (no footage, a full disk) is left out and the record is marked partial,
        down to the record alone; only an error writing the record itself is raised (OSError)."""
        ev = closed.event
        folder = self._data_dir / EVENTS_DIR / ev.event_id
        files: list[Path] = []
        extra = {"close_reason": ev.reason.value if ev.reason else None, **closed.extra}
        clip: ClipInfo | None = None
        resolved = [self._resolve(s) for s in segs]
        try:
            folder.mkdir(parents=True, exist_ok=True)
            clip = cut_clip(resolved, ev.clip_start_wall, ev.clip_end_wall, folder / "clip.mp4")
            files.append(folder / "clip.mp4")
        except (AgentError, OSError) as err:  # no footage (a gap, a power cut), or a full disk
            log.warning("event %s: no clip: %s", ev.event_id, err)
            extra["clip_missing"] = _why(err)
        try:
            image = closed.image if closed.image is not None else self._peak_frame(ev, clip, resolved)
            if image is not None:
                files.extend(write_snapshots(image, ev.peak_boxes, self._masker, folder))
            else:
                extra["snapshot_missing"] = "no footage to take it from"
        except (AgentError, OSError) as err:
            log.warning("event %s: no snapshots: %s", ev.event_id, err)
            extra["snapshot_missing"] = _why(err)
        partial = "clip_missing" in extra or "snapshot_missing" in extra
        record = self._record(ev, clip, files, segs, extra, partial)
        path = publish_event(self._data_dir, record)
        for listener in self.listeners:
            listener(record)
        return path, record

    def _peak_frame(self, ev: Event, clip: ClipInfo | None, segs: Sequence[SegmentLike]) -> np.ndarray | None:
        """The peak frame from the footage: the clip if there is one, else the segment holding it."""
        folder = self._data_dir / EVENTS_DIR / ev.event_id
        if clip is not None:
            return frame_at(folder / "clip.mp4", ev.peak_wall - clip.start)
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
        if path.is_absolute():
            return seg
        return _Seg(self._data_dir / path, seg.start, seg.end)

    def _record(self, ev: Event, clip: ClipInfo | None, files: list[Path], segs: Sequence[SegmentLike],
                extra: dict, partial: bool) -> EventRecord:
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
            files=entries, previous_event_id=ev.previous_event_id, extra=extra, partial=partial,
        )

    def _report(self, state: StateStore, ev: Event) -> None:
        today = datetime.fromtimestamp(ev.start_wall, UTC).date().isoformat()
        prev = state.read("motion")
        count = 0
        if prev is not None and prev.state.get("day") == today:
            count = int(prev.state.get("events_today") or 0)
        state.report("motion", last_event_at=iso_utc(ev.start_wall), events_today=count + 1, day=today)


def _why(err: Exception) -> str:
    if isinstance(err, OSError) and err.errno in (errno.ENOSPC, errno.EDQUOT):
        return f"disk full: {err.strerror}"
    return str(err)[:200]


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
