"""The recording pipeline: source -> (recorder, full frames) + (detector -> events) -> event writer.

Wired by agent.runner; threads talk through bounded queues. The capture thread never waits on a
live camera (a full queue drops the frame and counts it); clip cutting runs on its own thread.
"""

from __future__ import annotations

import dataclasses
import logging
import queue
import sqlite3
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Protocol

import numpy as np

from agent.clock import Clock
from agent.config import Config
from agent.db import connect, db_path
from agent.detection.analyser import Analyser
from agent.detection.masks import LiveMasker
from agent.errors import AgentError, InputError
from agent.events.writer import EventWriter
from agent.framequeue import ByteQueue
from agent.sources import Frame, FrameSource, FrameTimeout
from agent.state import StateStore
from agent.threads import Health, supervised

log = logging.getLogger(__name__)

_END = None  # queue sentinel: no more frames
MIB = 1024 * 1024
RECORD_QUEUE_BYTES = 16 * MIB  # 0.6 s of 720p BGR frames at 10 fps (5 frames of 1080p)
ANALYSE_QUEUE_BYTES = 2 * MIB  # analysis frames only (320x240 grey: 27 of them)
_NO_IMAGE = np.zeros((0, 0, 3), np.uint8)  # the analyser never needs the full image


class Recorder(Protocol):
    def write(self, frame: Frame) -> None: ...
    def close(self) -> None: ...


# Built inside the thread that uses them (sqlite connections belong to one thread). The source is
# made (not opened) by the capture thread, the recorder is attached to it by the record thread (a
# picamera2 hardware recorder must be, before the camera starts), then the capture thread opens it.
SourceFactory = Callable[[StateStore], FrameSource]
RecorderFactory = Callable[[sqlite3.Connection, StateStore, FrameSource], Recorder]


class Pipeline:
    """Threads: capture (reads the source), record (writes segments), analyse (motion + events),
    and the EventWriter. `start()`, `stop()` (finish the open segment and event), `join(timeout)`;
    a non-looping file source ends the pipeline by itself after everything is flushed."""

    def __init__(self, cfg: Config, data_dir: Path, clock: Clock, make_source: SourceFactory,
                 make_recorder: RecorderFactory, writer: EventWriter, recording_done: threading.Event,
                 live: bool, masker: LiveMasker | None = None, record_queue_bytes: int = RECORD_QUEUE_BYTES,
                 analyse_queue_bytes: int = ANALYSE_QUEUE_BYTES) -> None:
        self._cfg = cfg
        self._db = db_path(data_dir)
        self._clock = clock
        self._make_source = make_source
        self._make_recorder = make_recorder
        self._writer = writer
        self._recording_done = recording_done
        self._live = live
        self._stop = threading.Event()
        self._made: queue.Queue[FrameSource] = queue.Queue(1)  # capture -> record: the unopened source
        self._attached = threading.Event()  # record -> capture: the recorder is ready
        self.opened = threading.Event()  # the camera source is open (see wait_opened)
        # Bounded in bytes, so a 1080p camera cannot hold more memory than a 480p one.
        self._rec_q: ByteQueue[Frame | None] = ByteQueue(record_queue_bytes)
        self._ana_q: ByteQueue[Frame | None] = ByteQueue(analyse_queue_bytes)
        self.analyser = Analyser(cfg, cfg.unit.id, on_open=writer.note_open)
        self.masker = masker
        self._new_cfg: Config | None = None
        self.dropped = {"record": 0, "analyse": 0}
        self.frames = 0
        self.first_frame: tuple[float, float] | None = None  # (t, wall) of the first frame
        self.error: BaseException | None = None
        self._threads: list[threading.Thread] = []
        writer.on_death = self._failed  # a dead writer stops the pipeline: the runner exits non-zero

    def start(self) -> None:
        self._writer.start()
        self._threads = [supervised(name, target, self._failed) for name, target in
                         (("capture", self._capture), ("record", self._record), ("analyse", self._analyse))]

    def wait_opened(self, timeout: float = 60.0) -> None:
        """Wait until the source is open; raise its error (a missing device: InputError) if the
        pipeline stopped first, so nothing else is started for a unit that cannot record."""
        deadline = self._clock.monotonic() + timeout
        while not self.opened.wait(0.1):
            if not self.is_alive() or self.error is not None or self._clock.monotonic() > deadline:
                break
        if self.error is not None and not self.opened.is_set():
            self.join(10.0)
            raise self.error if isinstance(self.error, AgentError) else AgentError(str(self.error))

    def apply_config(self, cfg: Config) -> None:
        """A reloaded, valid config (called from the reloader's thread; only hands it over). Privacy
        masks apply from the next frame; motion and events settings at the next analysed frame.
        unit, camera and recording changes need a restart."""
        if self.masker is not None:
            self.masker.update([z.polygon for z in cfg.privacy.masks])
        self._new_cfg = cfg

    def stop(self) -> None:
        """Ask for a clean shutdown: the open segment is closed and the open event is published."""
        self._stop.set()

    def join(self, timeout: float | None = None) -> bool:
        """Wait for every thread; True when all have finished."""
        for t in self._threads:
            t.join(timeout)
        self._writer.join(timeout)
        return not any(t.is_alive() for t in self._threads) and not self._writer.is_alive()

    def is_alive(self) -> bool:
        return any(t.is_alive() for t in self._threads) or self._writer.is_alive()

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    def health(self) -> Health:
        dead = [t.name for t in self._threads if not t.is_alive()]
        if self._threads and dead and not self._stop.is_set():
            return Health(False, f"{', '.join(dead)} stopped")
        return Health(self.error is None and bool(self._threads), str(self.error or "running"))

    def _failed(self, err: BaseException) -> None:
        """A thread died (logged by agent.threads): recorded for the runner, which exits non-zero."""
        self.error = self.error or err
        self._stop.set()

    # -- threads ------------------------------------------------------------------------------

    def _capture(self) -> None:
        conn = connect(self._db)
        source: FrameSource | None = None
        try:
            made = self._make_source(StateStore(conn, self._clock))
            self._made.put(made, timeout=1.0)  # an empty 1-slot queue: never waits
            while not self._attached.wait(0.5):
                if self._stop.is_set():
                    return
            source = made
            source.open()
            self.opened.set()
            while not self._stop.is_set():
                try:
                    frame = source.read(timeout=1.0)
                except FrameTimeout:
                    continue
                if frame is None:
                    break
                if self.first_frame is None:
                    self.first_frame = (frame.t, frame.wall)
                self.frames += 1
                self._offer(self._rec_q, frame, "record")
                self._offer(self._ana_q, dataclasses.replace(frame, image=_NO_IMAGE), "analyse")
        finally:
            try:
                if source is not None:
                    source.close()
                conn.close()
            finally:
                _put_end(self._rec_q)
                _put_end(self._ana_q)

    def _offer(self, q: ByteQueue, frame: Frame, name: str) -> None:
        """Live camera: never wait (drop and count). File: wait, so nothing is skipped."""
        if self._live:
            try:
                q.put_nowait(frame)
            except queue.Full:
                self.dropped[name] += 1
                if self.dropped[name] in (1, 10, 100) or self.dropped[name] % 1000 == 0:
                    log.warning("%s queue full: %d frames dropped", name, self.dropped[name])
            return
        while not self._stop.is_set():
            try:
                q.put(frame, timeout=0.5)
                return
            except queue.Full:
                continue

    def _record(self) -> None:
        conn = connect(self._db)
        recorder: Recorder | None = None
        try:
            while True:
                try:
                    made = self._made.get(timeout=0.5)
                    break
                except queue.Empty:
                    if self._stop.is_set():
                        return
            recorder = self._make_recorder(conn, StateStore(conn, self._clock), made)
            self._attached.set()
            for frame in self._frames(self._rec_q):
                recorder.write(frame)
        finally:
            try:
                if recorder is not None:
                    recorder.close()
                conn.close()
            finally:
                self._recording_done.set()
                _drain(self._rec_q)

    def _frames(self, q: queue.Queue) -> Iterator[Frame]:
        """Frames from the capture thread until its end marker, waiting boundedly; ends also if the
        capture thread is gone without one."""
        while True:
            try:
                frame = q.get(timeout=1.0)
            except queue.Empty:
                if self._threads and not self._threads[0].is_alive():
                    return
                continue
            if frame is _END:
                return
            yield frame

    def _analyse(self) -> None:
        try:
            for frame in self._frames(self._ana_q):
                if self._new_cfg is not None:
                    cfg, self._new_cfg = self._new_cfg, None
                    self.analyser.reconfigure(cfg)
                for closed in self.analyser.feed(frame):
                    self._writer.submit(closed)
            for closed in self.analyser.finish():
                self._writer.submit(closed)
        finally:
            self._writer.close_input()
            _drain(self._ana_q)


def _put_end(q: ByteQueue) -> None:
    """Queue the end marker even if the consumer died and left the queue full."""
    while True:
        try:
            q.put(_END, timeout=0.5)
            return
        except queue.Full:
            try:
                q.get_nowait()
            except queue.Empty:
                pass


def _drain(q: ByteQueue) -> None:
    """After a consumer stops early, empty its queue so the capture thread never waits on it."""
    try:
        while True:
            q.get_nowait()
    except queue.Empty:
        pass


def require_frames(pipeline: Pipeline) -> None:
    """Raise for a source that ended without a single frame (an empty or unreadable file)."""
    if pipeline.frames == 0 and pipeline.error is None:
        raise InputError("the camera source delivered no frames")
    if isinstance(pipeline.error, AgentError):
        raise pipeline.error
