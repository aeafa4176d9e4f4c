"""Event notification (unit -> control room): an event's times, boxes and what is already in the bucket.

Sent by agent.upload.notify when the snapshot is stored and again when the clip is verified;
validated by the control room's unit API. Idempotent on event_id.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field

from protocol.fields import Bucket, Count, EventId, Part, SchemaVersion, Sha256, Unit01, UnitId, UtcTime

STATES = ("snapshot_uploaded", "clip_uploaded")


class StoredObject(Part):
    key: Annotated[str, Field(max_length=1024)]
    size: Count
    sha256: Sha256


class Objects(Part):
    snapshot: StoredObject | None = None
    clip: StoredObject | None = None
    manifest: StoredObject | None = None


Box = Annotated[list[Unit01], Field(min_length=4, max_length=4)]  # normalised [x, y, w, h]


class EventNote(Part):
    """POST /api/v1/units/<unit_id>/events."""

    schema_: SchemaVersion = Field(alias="schema")
    event_id: EventId
    unit_id: UnitId | None = None
    site: Annotated[str, Field(max_length=200)] = ""
    start: UtcTime
    end: UtcTime | None = None
    clip_start: UtcTime | None = None
    clip_end: UtcTime | None = None
    peak_score: float | None = Field(None, ge=0, le=10**6)
    peak_time: UtcTime | None = None
    boxes: list[Box] = Field(default_factory=list, max_length=64)
    clock_synced: bool | None = None
    previous_event_id: EventId | None = None
    state: Literal["snapshot_uploaded", "clip_uploaded"]
    bucket: Bucket
    objects: Objects = Field(default_factory=Objects)

    def wire(self) -> dict[str, Any]:
        """The JSON body as sent; `objects` names only what is in the bucket (no nulls)."""
        body = super().wire()
        body["objects"] = {role: obj for role, obj in body["objects"].items() if obj is not None}
        return body
