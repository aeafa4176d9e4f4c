"""Watchdog feeding: the agent is alive only while frames flow, segments are written and uploads run.

service.py calls WatchdogFeeder.tick() about once a second with the component-state rows; it pings
systemd (WATCHDOG=1) only while Liveness judges every stage fresh by their monotonic update times,
so a hung camera stack or a stuck writer gets the process restarted by systemd.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from agent.config import Config
from agent.state import ComponentState
from agent.status.sdnotify import Notifier

log = logging.getLogger(__name__)

UPLOAD_STALE_S = 120.0  # the upload thread reports alive_at at least every minute


@dataclass(frozen=True)
class Verdict:
    healthy: bool
    reason: str


class Liveness:
    """Judges from component states whether every stage still works.

    A stage counts as working while its last good report (camera `ok`, recording `recording`, upload
    alive) is younger than its limit, measured on CLOCK_MONOTONIC (`updated_mono`), so wall-clock jumps
    do not matter. During the start-up grace period missing rows are not held against the agent.
    """

    def __init__(self, cfg: Config, started_mono: float, upload_stale_s: float = UPLOAD_STALE_S) -> None:
        seg = cfg.recording.segment_seconds
        # the camera reports about once a second while frames flow; allow for that and our own tick
        self.limits = {"camera": cfg.camera.stall_timeout_s + 5.0, "recording": 2 * seg + 10.0}
        if cfg.upload.enabled:
            self.limits["upload"] = upload_stale_s
        self.started = started_mono
        self.grace_s = max(30.0, 2 * seg + 10.0, cfg.camera.stall_timeout_s)
        self._last_good: dict[str, float] = {}

    def seed(self, other: Liveness) -> None:
        """Carry the last good report times over from the Liveness this one replaces (config reload)."""
        self._last_good.update(other._last_good)

    @staticmethod
    def _good(component: str, row: ComponentState) -> bool:
        if component == "camera":
            return row.state.get("state") == "ok"
        if component == "recording":
            return row.state.get("state") == "recording" and bool(row.state.get("last_segment_at"))
        return row.state.get("alive_at") is not None

    def judge(self, states: dict[str, ComponentState], now_mono: float) -> Verdict:
        problems = []
        for component, limit in self.limits.items():
            row = states.get(component)
            if row is not None and self._good(component, row) and row.updated_mono <= now_mono:
                self._last_good[component] = max(self._last_good.get(component, 0.0), row.updated_mono)
            last = self._last_good.get(component)
            if last is None:
                if now_mono - self.started > self.grace_s:
                    problems.append(f"no {component} report")
            elif now_mono - last > limit:
                fresh = row is not None and row.updated_mono > last
                said = row.state.get("state", "not alive") if fresh and row is not None else "silent"
                problems.append(f"{component} {said} for over {limit:.0f}s")
        if problems:
            return Verdict(False, "; ".join(problems))
        return Verdict(True, "starting" if len(self._last_good) < len(self.limits) else "all stages alive")


class WatchdogFeeder:
    """Pings the systemd watchdog every half WATCHDOG_USEC while Liveness says healthy."""

    def __init__(self, notifier: Notifier, liveness: Liveness) -> None:
        self.notifier = notifier
        self.liveness = liveness
        self.interval_s = notifier.watchdog_s
        self._last_ping: float | None = None
        self._last_reason = ""
        self.pings = 0

    def tick(self, states: dict[str, ComponentState], now_mono: float) -> Verdict:
        verdict = self.liveness.judge(states, now_mono)
        if verdict.reason != self._last_reason:
            level = logging.INFO if verdict.healthy else logging.WARNING
            log.log(level, "watchdog: %s%s", "" if verdict.healthy else "not feeding: ", verdict.reason)
            self.notifier.status(verdict.reason if verdict.healthy else f"unhealthy: {verdict.reason}")
            self._last_reason = verdict.reason
        due = self._last_ping is None or (
            self.interval_s is not None and now_mono - self._last_ping >= self.interval_s
        )
        if verdict.healthy and self.interval_s is not None and due:
            if self.notifier.watchdog():
                self.pings += 1
            self._last_ping = now_mono
        return verdict
