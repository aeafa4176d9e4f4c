"""Keeps a camera source alive: a source that raises or delivers no frame for stall_timeout_s is
closed and reopened with capped exponential backoff; its health goes to the `camera` state row.

SupervisedSource is itself a FrameSource, so the pipeline reads from it like any backend.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Iterator

import tenacity

from agent.backoff import waits
from agent.clock import Clock
from agent.config import CameraConfig
from agent.errors import InputError
from agent.sources.base import Frame, FrameSource, FrameTimeout
from agent.state import StateStore

log = logging.getLogger(__name__)

BACKOFF_START_S = 1.0
STATE_INTERVAL_S = 1.0


class SupervisedSource:
    """Wraps a FrameSource (not yet opened). Called from one thread (the pipeline's).

    open() raises InputError for a device that does not exist (a config problem: exit 2); any other
    failure to open is retried. read(timeout) raises FrameTimeout when nothing came in time, returns
    None only at the end of a non-looping file; Frame.index runs on across reopens.
    """

    def __init__(self, source: FrameSource, cfg: CameraConfig, clock: Clock,
                 state: StateStore | None = None) -> None:
        self.inner = source
        self._cfg = cfg
        self._clock = clock
        self._state = state
        self._open = False
        self._backoff = self._new_backoff()
        self._next_attempt = 0.0
        self._last_frame_mono = clock.monotonic()
        self._last_frame_wall: float | None = None
        self._count = 0
        self.restarts = 0
        self._status, self._error = "reopening", ""
        self._fps_window = (clock.monotonic(), 0)
        self._fps = 0.0
        self._reported_at: float | None = None

    @property
    def fps(self) -> float:
        return self.inner.fps

    @property
    def size(self) -> tuple[int, int]:
        return self.inner.size

    @property
    def status(self) -> str:
        return self._status

    def _new_backoff(self) -> Iterator[float]:
        """Reopen delays after failures in a row: 1 s, 2 s, 4 s, ... capped (tenacity's schedule)."""
        cap = self._cfg.reopen_backoff_max_s
        return waits(tenacity.wait_exponential(multiplier=BACKOFF_START_S, max=cap))

    def open(self) -> None:
        self._try_open(first=True)

    def _try_open(self, first: bool = False) -> None:
        try:
            self.inner.open()
        except InputError:
            if first:
                raise
            self._fail("device disappeared", reopen=True)
            return
        except Exception as err:  # any backend failure: try again later
            self._fail(f"open failed: {err}", reopen=True)
            return
        self._open = True
        self._last_frame_mono = self._clock.monotonic()  # the stall timer starts at open
        if not first:
            log.info("camera %s reopened (restart %d)", self._cfg.device or self._cfg.source, self.restarts)

    def _fail(self, error: str, reopen: bool = False) -> None:
        """Close the source and schedule the next open after a capped exponential backoff."""
        try:
            self.inner.close()
        except Exception as err:
            log.debug("closing failed source: %s", err)
        self._open = False
        if not reopen:
            self.restarts += 1
        delay = next(self._backoff)
        self._next_attempt = self._clock.monotonic() + delay
        stalled = error.startswith("stalled")
        self._status = "stalled" if stalled else ("failed" if reopen else "reopening")
        self._error = error
        log.warning("camera %s: %s; reopening in %.0f s", self._cfg.device or self._cfg.source, error, delay)
        self._report(force=True)

    def read(self, timeout: float = 1.0) -> Frame | None:
        deadline = self._clock.monotonic() + timeout
        while True:
            now = self._clock.monotonic()
            if not self._open:
                if now >= self._next_attempt:
                    self._status = "reopening"
                    self._try_open()
                    continue
                if now >= deadline:
                    self._report()
                    raise FrameTimeout("camera: waiting to reopen")
                self._clock.sleep(min(self._next_attempt, deadline) - now)
                continue
            try:
                frame = self.inner.read(max(0.01, min(deadline - now, 1.0)))
            except FrameTimeout:
                if self._clock.monotonic() - self._last_frame_mono >= self._cfg.stall_timeout_s:
                    self._fail(f"stalled: no frame for {self._cfg.stall_timeout_s:.0f} s")
                self._report()
                raise
            except InputError:
                raise
            except Exception as err:  # a backend failure: reopen with backoff
                self._fail(f"source failed: {err}")
                continue
            if frame is None:
                self._status = "stopped"
                self._report(force=True)
                return None
            return self._accept(frame)

    def _accept(self, frame: Frame) -> Frame:
        if self._status != "ok":
            self._backoff = self._new_backoff()
        self._status, self._error = "ok", ""
        self._last_frame_mono, self._last_frame_wall = frame.t, frame.wall
        out = dataclasses.replace(frame, index=self._count)
        self._count += 1
        self._report()
        return out

    def _report(self, force: bool = False) -> None:
        now = self._clock.monotonic()
        start, frames_then = self._fps_window
        if now - start >= STATE_INTERVAL_S:
            self._fps = (self._count - frames_then) / (now - start)
            self._fps_window = (now, self._count)
        if self._status != "ok":
            self._fps = 0.0 if now - self._last_frame_mono >= STATE_INTERVAL_S else self._fps
        if self._state is None:
            return
        if not force and self._reported_at is not None and now - self._reported_at < STATE_INTERVAL_S:
            return
        self._reported_at = now
        self._state.report(
            "camera", state=self._status, fps=round(self._fps, 2), last_frame_at=self._last_frame_wall,
            restarts=self.restarts, error=self._error or None,
        )

    def close(self) -> None:
        if self._open:
            self.inner.close()
        self._open = False
