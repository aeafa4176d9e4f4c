"""Event writer thread: turns closed events into files and an outbox record, off the capture path.

Receives events from the analysis stage over a bounded queue, keeps them in custody (journal, ledger,
footage holds: agent.events.custody) until the segments covering each clip are closed, has their
files made (agent.events.eventfiles) and settles each one: published, partial or lost with a reason.
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
from pathlib import Path

import numpy as np

from agent.clock import Clock, iso_utc
from agent.config import Config
from agent.db import connect, db_path
from agent.detection.masks import PrivacyMasker
from agent.errors import AgentError
from agent.events.clips import SegmentLike
from agent.events.custody import Custody
from agent.events.eventfiles import EventFiles
from agent.events.journal import recovered
from agent.events.ledger import Fate, LossReason
from agent.events.outbox import OUTBOX_DIR, EventRecord, read_event
from agent.events.record import report_motion
from agent.events.tracker import Event, on_timeline
from agent.recording.gaps import gaps_between
from agent.recording.index import SegmentIndex
from agent.recording.retention import uploaded_marker
from agent.state import StateStore
from agent.threads import Health, put, supervised

log = logging.getLogger(__name__)

Covering = Callable[[sqlite3.Connection, float, float], Sequence[SegmentLike]]
RoomMaker = Callable[[sqlite3.Connection], Callable[[int], bool]]  # per thread: need_bytes -> room made
RECORD_ATTEMPTS = 6  # a record that cannot be written (full disk) is tried this often ...
RECORD_RETRY_S = 10.0  # ... this far apart (retention frees space meanwhile) before it counts as lost
SNAPSHOT_ROOM = 2_000_000  # room asked for beyond the clip's footage: snapshots and the record


@dataclass
class ClosedEvent:
    """An event the tracker closed. `image` is None in the running unit: the snapshot is taken from
    the recorded footage at the peak time (agent.detection.analyser holds no frames)."""

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
    """Thread: `submit()` closed events and `note_open()` opened ones (from the analysis thread),
    `close_input()` once no more will come; the thread exits when all are settled. `recording_done`
    tells it the recorder has closed its last segment, so pending clips are cut at once with the
    footage there is. Every hand-over waits boundedly and raises ConsumerDead if this thread died."""

    name = "event-writer"

    def __init__(self, cfg: Config, data_dir: Path, clock: Clock, recording_done: threading.Event,
                 covering: Covering = segment_index_covering, maxsize: int = 64,
                 masker: PrivacyMasker | None = None, room: RoomMaker | None = None,
                 on_death: Callable[[BaseException], None] | None = None) -> None:
        self._cfg = cfg
        self._data_dir = data_dir
        self._clock = clock
        self._recording_done = recording_done
        self._covering = covering
        self._room = room
        self.on_death = on_death  # told if this thread dies (the pipeline then stops: systemd restarts)
        self._make_room: Callable[[int], bool] = lambda _need: True
        self._unsettled: list[tuple[ClosedEvent, Fate, LossReason | None, str]] = []
        self._queue: queue.Queue[ClosedEvent | Event | None] = queue.Queue(maxsize)
        self._run_id = uuid.uuid4().hex  # journal entries of this run
        self._files = EventFiles(cfg, data_dir, clock,
                                 masker or PrivacyMasker([z.polygon for z in cfg.privacy.masks]))
        self._thread: threading.Thread | None = None
        conn = connect(db_path(data_dir))
        try:
            self._run_after = SegmentIndex(conn).max_id()  # segments of this run have larger ids
        finally:
            conn.close()
        self.published: list[Path] = []  # outbox records written (read after join)
        self.failures = 0  # events counted lost

    @property
    def listeners(self) -> list[Callable[[EventRecord], None]]:
        """Called on the writer thread after each publish (e.g. StatusService.trigger); must not block."""
        return self._files.listeners

    # -- called from other threads ----------------------------------------------------------------

    def start(self) -> None:
        self._thread = supervised(self.name, self._run, self.on_death)

    def submit(self, closed: ClosedEvent) -> None:
        ev = closed.event
        wait = (ev.clip_end_t - ev.clip_start_t) + 3 * self._cfg.recording.segment_seconds + 30.0
        closed.deadline = self._clock.monotonic() + wait
        put(self._queue, closed, self._thread, f"event {ev.event_id}")

    def note_open(self, ev: Event) -> None:
        """An event just opened (analysis thread): journalled, so a crash does not lose it."""
        put(self._queue, ev, self._thread, f"event {ev.event_id}")

    def close_input(self) -> None:
        put(self._queue, None, self._thread, "end of events")

    def stop(self) -> None:
        """The writer stops once its input is closed and everything is settled (close_input)."""

    def join(self, timeout: float | None = None) -> bool:
        if self._thread is not None:
            self._thread.join(timeout)
        return not self.is_alive()

    def is_alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def health(self) -> Health:
        if self._thread is None:
            return Health(False, "not started")
        return Health(self.is_alive(), f"{self._queue.qsize()} queued, {self.failures} lost")

    # -- the writer thread ------------------------------------------------------------------------

    def _run(self) -> None:
        conn = connect(db_path(self._data_dir))
        state, index = StateStore(conn, self._clock), SegmentIndex(conn)
        custody = Custody(conn, self._clock, self._run_id)
        pending: list[ClosedEvent] = []
        more = True
        try:
            if self._room is not None:
                self._make_room = self._room(conn)
            pending.extend(self._recover(conn, custody))
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
                        self._take(custody, index, item, pending)
                else:
                    self._recording_done.wait(0.5)
                pending = [c for c in pending if not self._try_write(conn, custody, state, index, c)]
                self._retry_settle(custody)
                if not (more or pending) and self._unsettled:  # only fates left to record: a while
                    idle_tries += 1
                    if idle_tries > 10:
                        log.error("%d event fate(s) not recorded; the journal keeps them for the next "
                                  "start", len(self._unsettled))
                        break
                    threading.Event().wait(1.0)
        finally:
            conn.close()

    def _take(self, custody: Custody, index: SegmentIndex, item: ClosedEvent | Event,
              pending: list[ClosedEvent]) -> None:
        """Journal an opened event, or journal, hold and queue a closed one. A database error (full
        disk, long lock) costs only the journal entry or the hold: the writer thread lives on."""
        try:
            if isinstance(item, Event):
                custody.note(self._on_timeline(index, item), closed=False)
                return
            pending.append(item)
            item.event = self._on_timeline(index, item.event)
            custody.note(item.event, closed=True)
            item.hold_id = custody.hold(item.event)
        except sqlite3.Error as err:
            log.error("event journal: %s (the event is still written)", err)

    def _footage(self, conn: sqlite3.Connection, index: SegmentIndex, closed: ClosedEvent
                 ) -> Sequence[SegmentLike]:
        if closed.segments is not None:
            return closed.segments
        ev = closed.event = self._on_timeline(index, closed.event)
        # Only this run's footage: an earlier run's may sit just before in time after a clock reset.
        return [s for s in self._covering(conn, ev.clip_start_wall, ev.clip_end_wall)
                if getattr(s, "id", self._run_after + 1) > self._run_after]

    def _try_write(self, conn: sqlite3.Connection, custody: Custody, state: StateStore, index: SegmentIndex,
                   closed: ClosedEvent) -> bool:
        """Write the event if its footage is ready (or will never be); True when done with it (it is
        then settled: published, partial or lost with a reason)."""
        now = self._clock.monotonic()
        late = self._recording_done.is_set() or now >= closed.deadline
        if now < closed.retry_at and not self._recording_done.is_set():
            return False
        try:
            segs = self._footage(conn, index, closed)
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
            self._make_room(sum(int(getattr(s, "size", 0) or 0) for s in segs) + SNAPSHOT_ROOM)
        except (OSError, sqlite3.Error) as err:
            log.error("event %s: could not make room for its clip: %s", ev.event_id, err)
        try:
            path, record = self._files.write(ev, closed.image, segs, closed.extra)
        except OSError as err:  # not even the record could be written (a full disk)
            closed.attempts += 1
            if closed.attempts < RECORD_ATTEMPTS and not self._recording_done.is_set():
                log.error("event %s: record not written (%s); trying again in %.0f s", ev.event_id, err,
                          RECORD_RETRY_S)
                closed.retry_at = now + RECORD_RETRY_S
                return False
            full = err.errno in (errno.ENOSPC, errno.EDQUOT)
            self._lost(custody, closed, LossReason.DISK_FULL if full else LossReason.WRITE_ERROR, err)
            return True
        except Exception as err:  # a bug must not stop the events after this one
            log.exception("event %s: could not be written", ev.event_id)
            self._lost(custody, closed, LossReason.WRITE_ERROR, err)
            return True
        self.published.append(path)
        self._settle(custody, closed, Fate.PARTIAL if record.partial else Fate.PUBLISHED)
        try:
            report_motion(state, ev)
        except sqlite3.Error as err:
            log.error("event %s: motion state not updated: %s", ev.event_id, err)
        return True

    def _lost(self, custody: Custody, closed: ClosedEvent, reason: LossReason, err: Exception) -> None:
        self.failures += 1
        log.error("event %s LOST (%s): %s", closed.event.event_id, reason.value, err)
        self._settle(custody, closed, Fate.LOST, reason, str(err))

    def _settle(self, custody: Custody, closed: ClosedEvent, fate: Fate,
                reason: LossReason | None = None, detail: str = "") -> None:
        """Record the fate; if the database cannot be written (full disk) it is retried, and if the
        agent dies first, the journal entry makes the next start settle it."""
        try:
            custody.settle(closed.event.event_id, closed.hold_id, fate, reason, detail)
        except sqlite3.Error as err:
            log.error("event %s: fate %s not recorded yet (%s); will retry", closed.event.event_id,
                      fate.value, err)
            self._unsettled.append((closed, fate, reason, detail))

    def _retry_settle(self, custody: Custody) -> None:
        waiting, self._unsettled = self._unsettled, []
        for closed, fate, reason, detail in waiting:
            self._settle(custody, closed, fate, reason, detail)

    def _recover(self, conn: sqlite3.Connection, custody: Custody) -> list[ClosedEvent]:
        """The events an earlier run journalled but never settled (it was killed): settled at once if
        their record was published, else queued to be written from the footage that run recorded."""
        out = []
        for ev, _closed in custody.left_behind():
            record = self._data_dir / OUTBOX_DIR / f"{ev.event_id}.json"
            if record.exists() or uploaded_marker(self._data_dir, ev.event_id).exists():
                partial = False  # published just before the crash: nothing to redo
                try:
                    partial = read_event(record).partial if record.exists() else False
                except AgentError:
                    pass
                self._settle(custody, ClosedEvent(ev, None), Fate.PARTIAL if partial else Fate.PUBLISHED)
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
                closed.hold_id = custody.hold(rec)
            except sqlite3.Error as err:
                log.error("event %s: footage not held: %s", ev.event_id, err)
            out.append(closed)
        return out

    def _on_timeline(self, index: SegmentIndex, ev: Event) -> Event:
        """Map the event's frame times to UTC as the recorder did for this run's segments."""
        if index.wall_at(ev.start_t, self._run_after) is None:
            return ev
        return on_timeline(ev, lambda t: index.wall_at(t, self._run_after) or 0.0)
