"""Config reload: watches the unit's config file and publishes a new, valid Config to subscribers.

Ansible rewrites the file (often by atomic rename); the `watchdog` library reports it, we wait until
writes settle, validate with agent.config.load_config, and hand a valid config to each subscriber
(StatusService.apply_config, the pipeline); an invalid one is refused with one log line and the
running config is kept. Subscribers run on the watcher's thread and must only queue the change.
"""

from __future__ import annotations

import hashlib
import logging
import os
import threading
from collections.abc import Callable, Mapping
from pathlib import Path

from watchdog.events import FileSystemEvent, FileSystemEventHandler
from watchdog.observers import Observer

from agent.config import Config, load_config
from agent.errors import ConfigError
from agent.threads import supervised

log = logging.getLogger(__name__)

Subscriber = Callable[[Config], None]
# Sections a running agent cannot change in place; a subscriber may restart for these.
RESTART_SECTIONS = frozenset({"unit", "camera", "recording"})


def changed_sections(old: Config, new: Config) -> set[str]:
    """Names of the config sections that differ between two configs."""
    return {name for name in Config.model_fields if getattr(old, name) != getattr(new, name)}


class _Handler(FileSystemEventHandler):
    def __init__(self, target: Path, poke: Callable[[], None]) -> None:
        self._target = target
        self._poke = poke

    def on_any_event(self, event: FileSystemEvent) -> None:
        paths = {event.src_path, getattr(event, "dest_path", "")}
        if any(p and Path(os.fsdecode(p)) == self._target for p in paths):
            self._poke()


class ConfigWatcher:
    """start() / stop() / join(timeout). Publishes each new valid config once, in file order."""

    def __init__(
        self,
        path: Path,
        current: Config,
        subscribers: list[Subscriber] | None = None,
        *,
        env: Mapping[str, str] | None = None,
        settle_s: float = 0.5,
        transform: Callable[[Config], Config] | None = None,
    ) -> None:
        self.path = Path(path).resolve()
        self.current = current
        self._subscribers = list(subscribers or [])
        self._env = dict(env) if env is not None else None
        self._settle_s = settle_s
        self._transform = transform
        self._dirty = threading.Event()
        self._stopping = threading.Event()
        self._last_digest = self._digest()
        self._refused_digest: str | None = None
        self._observer = Observer()
        self._thread: threading.Thread | None = None
        self.published = 0
        self.refused = 0
        self.checks = 0  # times the file was looked at (changed or not): progress seen from outside

    def subscribe(self, subscriber: Subscriber) -> None:
        self._subscribers.append(subscriber)

    def start(self) -> None:
        self._observer.schedule(_Handler(self.path, self._dirty.set), str(self.path.parent), recursive=False)
        self._observer.daemon = True
        self._observer.start()
        self._thread = supervised("config-reload", self._loop)

    def stop(self) -> None:
        self._stopping.set()
        self._dirty.set()
        self._observer.stop()

    def join(self, timeout: float | None = None) -> bool:
        self._observer.join(timeout)
        if self._thread is not None:
            self._thread.join(timeout)
        return not (self._observer.is_alive() or (self._thread is not None and self._thread.is_alive()))

    def _digest(self) -> str | None:
        try:
            return hashlib.sha256(self.path.read_bytes()).hexdigest()
        except OSError:
            return None

    def _loop(self) -> None:
        while not self._stopping.is_set():
            if not self._dirty.wait(1.0):
                continue
            # let a burst of writes (an editor, Ansible's temp file + rename) settle first
            while self._dirty.is_set() and not self._stopping.is_set():
                self._dirty.clear()
                self._stopping.wait(self._settle_s)
            if not self._stopping.is_set():
                self.check()

    def check(self) -> bool:
        """Load the file if its content changed; True if a new config was published."""
        try:
            return self._check()
        finally:
            self.checks += 1

    def _check(self) -> bool:
        digest = self._digest()
        if digest is None or digest == self._last_digest:
            return False
        try:
            new = load_config(self.path, self._env)
            if self._transform is not None:
                new = self._transform(new)
        except ConfigError as err:
            if digest != self._refused_digest:
                log.error("config change refused, keeping the running config: %s", err)
                self._refused_digest = digest
                self.refused += 1
            return False
        self._last_digest = digest
        self._refused_digest = None
        if new == self.current:
            return False
        sections = sorted(changed_sections(self.current, new))
        log.info("config reloaded from %s: %s changed", self.path, ", ".join(sections) or "nothing")
        self.current = new
        self.published += 1
        for subscriber in list(self._subscribers):
            try:
                subscriber(new)
            except Exception:
                log.exception("config subscriber %r failed", subscriber)
        return True
