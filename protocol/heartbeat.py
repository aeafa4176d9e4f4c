"""Heartbeat (unit -> control room, every interval and on change): the unit's state in one message.

Built by agent.status.heartbeat with fit(); validated by the control room's unit API before storing.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from protocol.fields import (
    Count,
    InstructionId,
    Part,
    SchemaVersion,
    Seconds,
    Short,
    Text,
    UnitId,
    UtcTime,
)

MAX_PAYLOAD_BYTES = 2048  # design size of one heartbeat body
MAX_ACKS = 4  # instruction ids acknowledged per heartbeat; the rest wait for the next
REASONS = ("interval", "startup", "change", "event")


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


class GapPart(Part):
    """Footage lost because the agent died with a segment in progress (agent.recording.gaps)."""

    start: UtcTime | None = None
    end: UtcTime | None = None
    reason: Literal["power_cut", "killed"] | None = None


class RecordingPart(Part):
    state: Literal["recording", "stopped", "error"] | None = None
    segment_seconds: Seconds | None = None
    last_segment_at: UtcTime | None = None
    gaps: Count | None = None  # gaps recorded since the unit was set up
    last_gap: GapPart | None = None


class MotionPart(Part):
    last_event_at: UtcTime | None = None
    events_today: Count | None = None


class DiskPart(Part):
    total_bytes: Count | None = None
    free_bytes: Count | None = None
    oldest_footage_at: UtcTime | None = None
    retention_days: Count | None = None
    events_lost: Count | None = None
    # why ({reason: count}; agent.events.ledger.LossReason: disk_full, write_error, deleted_before_upload)
    events_lost_reasons: dict[Short, Count] | None = None


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
    """POST /api/v1/units/<unit_id>/heartbeat. Blocks with no source on the unit are null."""

    schema_: SchemaVersion = Field(alias="schema")
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
