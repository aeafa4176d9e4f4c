"""The outbox record: an event's files, hashes and times, the one hand-over from events to upload.

Written by agent.events (outbox/<event_id>.json) and read by agent.upload; an evidence export reads
the same fields from the event's signed manifest. Strings stay strings: times in the wire form.
"""

from __future__ import annotations

import json
from dataclasses import asdict, field
from pathlib import PurePosixPath
from typing import Annotated, Any

from pydantic import AfterValidator, ConfigDict, Field, ValidationError
from pydantic.dataclasses import dataclass

from protocol import VERSION, ids
from protocol.fields import first_error
from protocol.times import parse_utc

ROLES_FIXED = ("clip", "snapshot", "snapshot_boxes")  # plus "segment-NNNN" for upload_range footage


def _time_text(value: str) -> str:
    parse_utc(value)
    return value


def _relative(value: str) -> str:
    path = PurePosixPath(value)
    if path.is_absolute() or ".." in path.parts or not value:
        raise ValueError("must be a relative path inside the unit's data folder")
    return value


def _event_id(value: str) -> str:
    if not ids.EVENT_ID.fullmatch(value):
        raise ValueError(f"event id: {ids.describe(ids.EVENT_ID)}")
    return value


TimeText = Annotated[str, AfterValidator(_time_text)]
_CONFIG = ConfigDict(strict=False, extra="forbid")


@dataclass(frozen=True, config=_CONFIG)
class EventFile:
    role: str  # "clip" | "snapshot" | "snapshot_boxes" | "segment-NNNN"
    path: Annotated[str, AfterValidator(_relative)]  # relative to the data_dir: "events/<id>/clip.mp4"
    size: Annotated[int, Field(ge=0)]
    sha256: Annotated[str, Field(pattern=ids.SHA256_HEX.pattern)]
    content_type: str


@dataclass(frozen=True, config=_CONFIG)
class EventRecord:
    """Everything an upload, a control-room notification and an evidence export need."""

    event_id: Annotated[str, AfterValidator(_event_id)]  # "<unit>-<YYYYMMDDTHHMMSS.mmmZ>", sortable
    unit_id: Annotated[str, Field(pattern=ids.UNIT_ID.pattern)]
    site: str
    start: TimeText  # motion start
    end: TimeText  # motion end (last motion frame)
    clip_start: TimeText  # what the clip covers, after pre/post roll and keyframe alignment
    clip_end: TimeText
    peak_score: float
    peak_time: TimeText
    boxes: list[list[float]]  # motion boxes at peak, normalised [x, y, w, h] in 0..1
    clock_synced: bool  # false if the unit's clock was not NTP/GPS-synced when recorded
    software_version: str
    created_at: TimeText
    files: list[EventFile]  # at least one unless partial
    previous_event_id: str | None = None  # set when a long activity was split at max_clip_s
    extra: dict[str, Any] = field(default_factory=dict)
    # published with what exists: no clip (extra.clip_missing says why), perhaps no snapshots
    # (extra.snapshot_missing), down to the record alone (files empty)
    partial: bool = False
    schema: int = VERSION

    def __post_init__(self) -> None:
        if not self.files and not self.partial:
            raise ValueError("files: at least one file unless the record is partial")

    def file(self, role: str) -> EventFile | None:
        return next((f for f in self.files if f.role == role), None)

    def to_json(self) -> bytes:
        return json.dumps(asdict(self), sort_keys=True, indent=1).encode()

    @classmethod
    def from_json(cls, raw: bytes) -> EventRecord:
        """Parse and check a record; ValueError naming the problem for a corrupt one."""
        try:
            data = json.loads(raw)
        except ValueError as err:
            raise ValueError(f"not JSON: {err}") from None
        if not isinstance(data, dict):
            raise ValueError("not a JSON object")
        if data.get("schema") != VERSION:
            raise ValueError(f"unsupported schema {data.get('schema')!r}")
        try:
            return cls(**data)
        except ValidationError as err:
            raise ValueError(first_error(err)) from None
        except TypeError as err:
            raise ValueError(str(err)) from None
