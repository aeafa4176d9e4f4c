"""The outbox: the one hand-over between event cutting and the upload pipeline.

events.py writes an event's files under events/<event_id>/, then publishes outbox/<event_id>.json
by atomic rename; the upload queue picks records up (watchdog + start-up scan) and never edits them.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from agent.errors import InputError
from agent.fsutil import atomic_write_bytes

SCHEMA = 1
OUTBOX_DIR = "outbox"
EVENTS_DIR = "events"


@dataclass(frozen=True)
class EventFile:
    role: str  # "clip" | "snapshot" | "snapshot_boxes"
    path: str  # relative to the unit's data_dir, e.g. "events/<id>/clip.mp4"
    size: int
    sha256: str
    content_type: str


@dataclass(frozen=True)
class EventRecord:
    """Everything an upload, a control-room notification and an evidence export need."""

    event_id: str  # "<unit>-<YYYYMMDDTHHMMSS.mmmZ>", unique per unit, sortable
    unit_id: str
    site: str
    start: str  # motion start, RFC 3339 UTC ("...Z")
    end: str  # motion end (last motion frame)
    clip_start: str  # what the clip covers, after pre/post roll and keyframe alignment
    clip_end: str
    peak_score: float
    peak_time: str
    boxes: list[list[float]]  # motion boxes at peak, normalised [x, y, w, h] in 0..1
    clock_synced: bool  # false if the unit's clock was not NTP/GPS-synced when recorded
    software_version: str
    created_at: str
    files: list[EventFile]
    previous_event_id: str | None = None  # set when a long activity was split at max_clip_s
    extra: dict[str, Any] = field(default_factory=dict)
    schema: int = SCHEMA

    def file(self, role: str) -> EventFile | None:
        return next((f for f in self.files if f.role == role), None)

    def to_json(self) -> bytes:
        return json.dumps(asdict(self), sort_keys=True, indent=1).encode()

    @classmethod
    def from_json(cls, raw: bytes, source: str = "<record>") -> EventRecord:
        """Parse and check a record; raise InputError naming the problem for a corrupt one."""
        try:
            data = json.loads(raw)
            if not isinstance(data, dict):
                raise ValueError("not a JSON object")
            if data.get("schema") != SCHEMA:
                raise ValueError(f"unsupported schema {data.get('schema')!r}")
            files = [EventFile(**f) for f in data.pop("files")]
            rec = cls(files=files, **data)
        except (ValueError, TypeError, KeyError) as err:
            raise InputError(f"{source}: corrupt event record: {err}") from None
        if not files or any(Path(f.path).is_absolute() or ".." in Path(f.path).parts for f in files):
            raise InputError(f"{source}: corrupt event record: bad file list")
        return rec


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
    return EventRecord.from_json(raw, str(path))
