"""The unit API's request bodies (docs/protocol.md v1) as typed models: validated before anything
is stored. Unknown fields are ignored (units may be newer than the control room).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, ValidationError

from control_room import names

_RFC3339_Z = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,9})?Z$")
# No control characters (C0, DEL, C1) and no bidirectional overrides, which make shown text lie.
_PRINTABLE = re.compile(r"^[^\x00-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069]*$")
# Times outside these years are refused: year 1 or 9999 overflow when pages shift them to UK time.
_EARLIEST, _LATEST = datetime(1970, 1, 1, tzinfo=UTC), datetime(2100, 1, 1, tzinfo=UTC)


def _utc(value: Any) -> datetime:
    if not isinstance(value, str) or not _RFC3339_Z.fullmatch(value):
        raise ValueError("must be an RFC 3339 UTC time ending in Z")
    parsed = datetime.fromisoformat(value[:26].rstrip("Z") + "+00:00").astimezone(UTC)
    if not _EARLIEST <= parsed < _LATEST:
        raise ValueError("must be between 1970 and 2100")
    return parsed


def _pattern(pattern: re.Pattern[str], what: str) -> AfterValidator:
    def check(value: str) -> str:
        if not pattern.fullmatch(value):
            raise ValueError(f"{what}: {names.describe(pattern)}")
        return value
    return AfterValidator(check)


def _schema_v1(value: int) -> int:
    if value != 1:
        raise ValueError(f"unsupported schema version {value} (this control room speaks 1)")
    return value


SchemaV1 = Annotated[int, AfterValidator(_schema_v1)]  # strict int: true is not 1
UtcTime = Annotated[datetime, BeforeValidator(_utc)]
Text = Annotated[str, Field(max_length=200), _pattern(_PRINTABLE, "text without control characters")]
Short = Annotated[str, Field(max_length=64), _pattern(_PRINTABLE, "text without control characters")]
Count = Annotated[int, Field(ge=0, le=2**62)]
Seconds = Annotated[float, Field(ge=0, le=10**10)]
UnitId = Annotated[str, _pattern(names.UNIT_ID, "unit id")]
EventId = Annotated[str, _pattern(names.EVENT_ID, "event id")]
InstructionId = Annotated[str, _pattern(names.INSTRUCTION_ID, "instruction id")]
Unit01 = Annotated[float, Field(ge=0.0, le=1.0)]


class Part(BaseModel):
    # strict: no quiet coercion ("12" is not 12, true is not 1); ints are still accepted as floats
    model_config = ConfigDict(extra="ignore", frozen=True, strict=True)


class ClockPart(Part):
    synced: bool | None = None
    offset_s: float | None = Field(None, ge=-10**9, le=10**9)
    source: Short | None = None


class CameraPart(Part):
    state: Literal["ok", "stalled", "reopening", "failed"] | None = None
    fps: float | None = Field(None, ge=0, le=1000)
    last_frame_at: UtcTime | None = None
    restarts: Count | None = None
    error: Text | None = None


class RecordingPart(Part):
    state: Literal["recording", "stopped", "error"] | None = None
    segment_seconds: Seconds | None = None
    last_segment_at: UtcTime | None = None


class MotionPart(Part):
    last_event_at: UtcTime | None = None
    events_today: Count | None = None


class DiskPart(Part):
    total_bytes: Count | None = None
    free_bytes: Count | None = None
    oldest_footage_at: UtcTime | None = None
    retention_days: Count | None = None
    events_lost: Count | None = None


class UploadsPart(Part):
    pending: Count | None = None
    pending_bytes: Count | None = None
    oldest_pending_age_s: Seconds | None = None
    failed: Count | None = None
    last_success_at: UtcTime | None = None
    held_by_budget: Count | None = None


class DataPart(Part):
    period_start: UtcTime | None = None
    used_bytes: Count | None = None
    budget_bytes: Count | None = None


class SystemPart(Part):
    cpu_temp_c: float | None = Field(None, ge=-60, le=200)
    undervoltage: bool | None = None
    throttled: bool | None = None
    throttled_flags: Short | None = None
    load1: float | None = Field(None, ge=0, le=10**4)
    mem_total_bytes: Count | None = None
    mem_available_bytes: Count | None = None


class ModemPart(Part):
    signal_percent: float | None = Field(None, ge=0, le=100)
    operator: Short | None = None
    technology: Short | None = None
    state: Short | None = None


class GpsPart(Part):
    fix: Literal["none", "2d", "3d"] | None = None
    lat: float | None = Field(None, ge=-90, le=90)
    lon: float | None = Field(None, ge=-180, le=180)
    time: UtcTime | None = None


class Heartbeat(Part):
    schema_: SchemaV1 = Field(alias="schema")
    unit_id: UnitId | None = None
    seq: Count | None = None
    sent_at: UtcTime | None = None
    reason: Literal["interval", "startup", "change", "event"] | None = None
    software_version: Short | None = None
    boot_id: Short | None = None
    uptime_s: Seconds | None = None
    clock: ClockPart | None = None
    camera: CameraPart | None = None
    recording: RecordingPart | None = None
    motion: MotionPart | None = None
    disk: DiskPart | None = None
    uploads: UploadsPart | None = None
    data: DataPart | None = None
    system: SystemPart | None = None
    modem: ModemPart | None = None
    gps: GpsPart | None = None
    config_version: Short | None = None
    acked: list[InstructionId] = Field(default_factory=list, max_length=100)

    def state(self) -> dict[str, Any]:
        """What is kept as the unit's last state: the known fields, times as RFC 3339 text."""
        return self.model_dump(mode="json", by_alias=True, exclude={"acked"})


class StoredObject(Part):
    key: Annotated[str, Field(max_length=1024)]
    size: Count
    sha256: Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]


class Objects(Part):
    snapshot: StoredObject | None = None
    clip: StoredObject | None = None
    manifest: StoredObject | None = None


class EventNote(Part):
    schema_: SchemaV1 = Field(alias="schema")
    event_id: EventId
    unit_id: UnitId | None = None
    site: Annotated[str, Field(max_length=200)] = ""
    start: UtcTime
    end: UtcTime | None = None
    clip_start: UtcTime | None = None
    clip_end: UtcTime | None = None
    peak_score: float | None = Field(None, ge=0, le=10**6)
    peak_time: UtcTime | None = None
    boxes: list[Annotated[list[Unit01], Field(min_length=4, max_length=4)]] = Field(default_factory=list,
                                                                                   max_length=64)
    clock_synced: bool | None = None
    previous_event_id: EventId | None = None
    state: Literal["snapshot_uploaded", "clip_uploaded"]
    bucket: Annotated[str, _pattern(names.S3_BUCKET, "bucket")]
    objects: Objects = Field(default_factory=Objects)


def first_error(exc: ValidationError) -> str:
    """One line naming the field and what is wrong with it."""
    err = exc.errors(include_url=False)[0]
    where = ".".join(str(p) for p in err["loc"] if p != "schema_") or "body"
    if err["loc"] and err["loc"][0] == "schema_":
        where = "schema"
    msg = err["msg"].removeprefix("Value error, ")
    return f"{where}: {msg}"
