"""The analyser: detector + event tracker, the one path from frames to events for `run` and `detect`.

Fed frames in order by the pipeline's analysis thread (or `cctv-agent detect`); closed events go to
the event writer (agent.events.writer).
"""

from __future__ import annotations

from collections.abc import Callable

from agent.config import Config, MotionConfig
from agent.detection.motion import MotionDetector
from agent.events.tracker import Event, EventTracker
from agent.events.writer import ClosedEvent
from agent.sources import Frame


def detection_config(cfg: Config) -> MotionConfig:
    """The detector's settings with the privacy masks added to its exclude zones: what happens
    behind a mask never starts an event or shows as a box on a snapshot."""
    if not cfg.privacy.masks:
        return cfg.motion
    return cfg.motion.model_copy(update={"exclude_zones": [*cfg.motion.exclude_zones,
                                                           *cfg.privacy.masks]})


class Analyser:
    """Detector + event tracker: the one path from frames to events, shared by `run` and `detect`.

    Holds no images: an event keeps its peak time and boxes, and the event writer takes the snapshot
    from the recorded footage (a 720p frame held per open event cost 2.8 MB each).
    Not thread-safe: one thread feeds it frames in order.
    """

    def __init__(self, cfg: Config, unit_id: str,
                 on_open: Callable[[Event], None] | None = None) -> None:
        self._cfg = cfg
        self._on_open = on_open
        self._detector: MotionDetector | None = None
        self.tracker = EventTracker(cfg.events, unit_id)
        self._last_t: float | None = None

    def feed(self, frame: Frame) -> list[ClosedEvent]:
        """Analyse one frame if the rate cap allows; return the events this frame closed."""
        self._last_t = frame.t
        if self._detector is None:
            h, w = frame.gray.shape[:2]
            self._detector = MotionDetector(detection_config(self._cfg), (w, h))
        if not self._detector.should_analyse(frame.t):
            return []
        result = self._detector.analyse(frame.gray, frame.t)
        update = self.tracker.update(result, frame.wall, frame.index)
        if update.started is not None and self._on_open is not None:
            self._on_open(update.started)
        return [ClosedEvent(ev, None) for ev in update.closed]

    def reconfigure(self, cfg: Config) -> None:
        """Take a reloaded config: a changed detector starts afresh (and recalibrates); the open
        event carries on under the new pre/post-roll and max-clip settings."""
        if detection_config(cfg) != detection_config(self._cfg):
            self._detector = None
        self.tracker.reconfigure(cfg.events)
        self._cfg = cfg

    def finish(self) -> list[ClosedEvent]:
        ev = self.tracker.finish(self._last_t)
        return [ClosedEvent(ev, None)] if ev else []
