"""Intake: outbox records become queued upload jobs, picked up by watchdog as soon as they are published.

A start-up scan (and a slow periodic one, in case inotify overflows) catches records published while
the agent was down; a corrupt record is kept as a REJECTED event, visible in `cctv-agent uploads`.
"""

from __future__ import annotations

import hashlib
import logging
import queue as pyqueue
from pathlib import Path

from watchdog.events import FileSystemEvent, FileSystemEventHandler
from watchdog.observers import Observer

from agent.clock import Clock
from agent.config import Config
from agent.errors import InputError
from agent.events.outbox import EVENTS_DIR, OUTBOX_DIR, EventRecord, read_event
from agent.upload.manifest import MANIFEST_NAME, build_manifest, write_manifest
from agent.upload.queue import EventState, JobKind, Lane, NewJob, Priority, UploadQueue
from agent.upload.signing import Signer
from protocol.times import parse_aware

log = logging.getLogger(__name__)

CHAIN_HEAD = "manifest_head"


def is_record(path: Path) -> bool:
    return path.suffix == ".json" and not path.name.startswith(".")


class _OutboxHandler(FileSystemEventHandler):
    """Puts the path of every newly published record on a queue (called on watchdog's thread)."""

    def __init__(self, inbox: pyqueue.Queue[Path]) -> None:
        self._inbox = inbox

    def on_created(self, event: FileSystemEvent) -> None:
        self._push(str(event.src_path))

    def on_moved(self, event: FileSystemEvent) -> None:
        self._push(str(event.dest_path))

    def _push(self, raw: str) -> None:
        path = Path(raw)
        if is_record(path):
            self._inbox.put(path)


def watch_outbox(outbox: Path, inbox: pyqueue.Queue[Path]) -> Observer:
    outbox.mkdir(parents=True, exist_ok=True)
    observer = Observer()
    observer.schedule(_OutboxHandler(inbox), str(outbox), recursive=False)
    observer.daemon = True
    observer.start()
    return observer


def scan_outbox(outbox: Path) -> list[Path]:
    return sorted(p for p in outbox.glob("*.json") if is_record(p)) if outbox.is_dir() else []


def object_prefix(cfg: Config, record: EventRecord) -> str:
    """`<prefix>/<unit-id>/<YYYY>/<MM>/<DD>/<event-id>/`, dated by the event start (UTC)."""
    start = parse_aware(record.start)
    parts = [
        cfg.upload.prefix.strip("/"),
        cfg.unit.id,
        f"{start:%Y}",
        f"{start:%m}",
        f"{start:%d}",
        record.event_id,
    ]
    return "/".join(p for p in parts if p) + "/"


class Intake:
    """Turns one outbox record into manifest + jobs. Used by the intake thread only."""

    def __init__(self, cfg: Config, clock: Clock, queue: UploadQueue, key: Signer) -> None:
        self._cfg = cfg
        self._clock = clock
        self._queue = queue
        self._key = key
        self._threshold = int(cfg.upload.multipart_threshold_mb * 1024 * 1024)

    def take_all(self, paths: list[Path], recheck_rejected: bool = True) -> bool:
        """take() each record not queued yet, judged by one query (the outbox keeps every record it
        ever got: a per-record lookup made each rescan cost more every month); True if any was queued."""
        known = self._queue.event_states()
        skip = {e for e, state in known.items() if not recheck_rejected or state is not EventState.REJECTED}
        return any([self.take(p, recheck_rejected) for p in paths if p.stem not in skip])

    def take(self, path: Path, recheck_rejected: bool = True) -> bool:
        """Queue the event of one record; False if already known or rejected (logged)."""
        event_id = path.stem
        known = self._queue.known_event(event_id)
        if known not in (None, EventState.REJECTED) or (known and not recheck_rejected):
            return False
        try:
            record = read_event(path)
            if record.event_id != event_id:
                raise InputError(
                    f"{path}: record says event {record.event_id!r}, file name says {event_id!r}"
                )
        except InputError as err:
            log.error("outbox record rejected (other events are unaffected): %s", err)
            self._queue.reject_event(event_id, str(err), self._clock.time())
            return False
        try:
            self._queue_record(record)
        except OSError as err:  # e.g. a full disk while writing the manifest: the next scan retries
            log.error("%s: cannot queue event yet (will retry): %s", event_id, err)
            return False
        return True

    def _check_unit(self, record: EventRecord) -> None:
        if record.unit_id != self._cfg.unit.id:
            log.warning(
                "%s: record unit %r is not this unit %r; uploading under %r",
                record.event_id,
                record.unit_id,
                self._cfg.unit.id,
                self._cfg.unit.id,
            )

    def _queue_record(self, record: EventRecord) -> None:
        self._check_unit(record)
        prefix = object_prefix(self._cfg, record)
        previous = self._queue.meta(CHAIN_HEAD)
        raw = build_manifest(record, self._cfg.unit.id, previous, self._key)
        # the event's own folder (for an event, where its files are): a range's segments share day
        # folders with other ranges, and one range's manifest must not overwrite another's
        folder = Path(EVENTS_DIR) / record.event_id
        write_manifest(self._cfg.unit.data_dir / folder, raw)
        digest = hashlib.sha256(raw).hexdigest()
        jobs = [
            NewJob(
                JobKind.MANIFEST,
                "manifest",
                Lane.FAST,
                str(folder / MANIFEST_NAME),
                prefix + MANIFEST_NAME,
                len(raw),
                digest,
                "application/json",
            )
        ]
        for f in record.files:
            video = f.role == "clip" or f.role.startswith("segment")  # segments: an upload_range
            big = video or f.size >= self._threshold
            jobs.append(
                NewJob(
                    JobKind.CLIP if video else JobKind.FILE,
                    f.role,
                    Lane.BULK if big else Lane.FAST,
                    f.path,
                    prefix + Path(f.path).name,
                    f.size,
                    f.sha256,
                    f.content_type,
                )
            )
        is_range = record.extra.get("kind") == "range"  # the protocol has no notification for ranges
        if self._cfg.status.enabled and self._cfg.status.url and not is_range:
            jobs.append(NewJob(JobKind.NOTIFY, "notify_snapshot", Lane.FAST))
            if record.file("clip"):
                jobs.append(NewJob(JobKind.NOTIFY, "notify_clip", Lane.FAST))
        high = record.extra.get("priority") == "high"
        self._queue.add_event(
            record.event_id,
            jobs,
            self._clock.time(),
            {CHAIN_HEAD: digest},
            Priority.HIGH if high else Priority.NORMAL,
        )
        log.info("queued event %s (%d jobs)", record.event_id, len(jobs))


def record_path(data_dir: Path, event_id: str) -> Path:
    return data_dir / OUTBOX_DIR / f"{event_id}.json"
