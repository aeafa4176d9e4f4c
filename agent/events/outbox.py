"""The outbox: the one hand-over between event cutting and the upload pipeline.

agent.events.writer writes an event's files under events/<event_id>/, then publishes outbox/<event_id>.json
by atomic rename; the upload queue picks records up (watchdog + start-up scan) and never edits them.
"""

from __future__ import annotations

from pathlib import Path

from agent.errors import InputError
from agent.fsutil import atomic_write_bytes
from protocol.outbox import EventFile, EventRecord  # the record's shape belongs to the wire contract

__all__ = ["EVENTS_DIR", "OUTBOX_DIR", "EventFile", "EventRecord", "publish_event", "read_event"]

OUTBOX_DIR = "outbox"
EVENTS_DIR = "events"


def publish_event(data_dir: Path, record: EventRecord) -> Path:
    """Atomically publish a finished event (its files must already be in place, fsynced)."""
    final = data_dir / OUTBOX_DIR / f"{record.event_id}.json"
    atomic_write_bytes(final, record.to_json())
    return final


def read_event(path: Path) -> EventRecord:
    try:
        raw = path.read_bytes()
    except OSError as err:
        raise InputError(f"{path}: cannot read event record: {err.strerror or err}") from None
    try:
        return EventRecord.from_json(raw)
    except ValueError as err:
        raise InputError(f"{path}: corrupt event record: {err}") from None
