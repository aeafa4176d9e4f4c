"""What the unit API stores: a validated heartbeat becomes the unit's last state (plus a chart
sample now and then); an event notification creates or updates one Event, idempotent on event_id.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from control_room import instructions
from control_room.models import Deployment, Event, EventState, HeartbeatSample, Unit
from protocol.events import EventNote
from protocol.heartbeat import Heartbeat


@dataclass(frozen=True)
class HeartbeatResult:
    instructions: list[dict[str, Any]]
    sampled: bool


def store_heartbeat(session: Session, unit: Unit, hb: Heartbeat, now: datetime,
                    sample_interval_s: float) -> HeartbeatResult:
    """Update the unit's last state, acknowledge and fetch instructions; the caller commits."""
    unit.last_seen_at = now
    unit.last_state = hb.state()
    unit.last_seq = hb.seq
    if hb.software_version is not None:
        unit.software_version = hb.software_version
    gps = hb.gps
    if gps is not None and gps.fix in ("2d", "3d") and gps.lat is not None and gps.lon is not None:
        unit.lat, unit.lon, unit.position_at = gps.lat, gps.lon, gps.time or now
    sampled = unit.last_sample_at is None or now - unit.last_sample_at >= timedelta(seconds=sample_interval_s)
    if sampled:
        session.add(_sample(unit, hb, now))
        unit.last_sample_at = now
    instructions.acknowledge(session, unit, hb.acked, now)
    return HeartbeatResult(instructions.deliver(session, unit, now), sampled)


def _sample(unit: Unit, hb: Heartbeat, now: datetime) -> HeartbeatSample:
    return HeartbeatSample(
        unit_pk=unit.id,
        at=now,
        signal_percent=hb.modem.signal_percent if hb.modem else None,
        disk_free_bytes=hb.disk.free_bytes if hb.disk else None,
        queue_depth=hb.uploads.pending if hb.uploads else None,
        cpu_temp_c=hb.system.cpu_temp_c if hb.system else None,
    )


class EventConflict(Exception):
    """The event id belongs to another unit."""


def store_event(session: Session, unit: Unit, note: EventNote, now: datetime) -> tuple[Event, bool]:
    """Create or update the event; returns (event, created). A repeat never downgrades the state."""
    event = session.scalar(select(Event).where(Event.event_id == note.event_id))
    created = event is None
    if event is None:
        event = Event(event_id=note.event_id, unit_pk=unit.id, council_id=unit.council_id,
                      received_at=now, state=EventState(note.state))
        event.site_id = _active_site(session, unit, note.start)
        session.add(event)
    elif event.unit_pk != unit.id:
        raise EventConflict(f"event {note.event_id!r} belongs to another unit")
    objects = dict(event.objects or {})
    objects.update(note.objects.model_dump(exclude_none=True))
    event.objects = objects
    if note.state == EventState.CLIP_UPLOADED.value:
        event.state = EventState.CLIP_UPLOADED
    event.site = note.site
    event.start, event.end = note.start, note.end
    event.clip_start, event.clip_end = note.clip_start, note.clip_end
    event.peak_score, event.peak_time = note.peak_score, note.peak_time
    event.boxes = [list(b) for b in note.boxes]
    event.clock_synced = note.clock_synced
    event.previous_event_id = note.previous_event_id
    event.bucket = note.bucket
    event.updated_at = now
    return event, created


def _active_site(session: Session, unit: Unit, at: datetime) -> int | None:
    """The site the unit was deployed at when the event started, if any."""
    return session.scalar(
        select(Deployment.site_id)
        .where(Deployment.unit_pk == unit.id, Deployment.start <= at)
        .where((Deployment.recovered_at.is_(None)) | (Deployment.recovered_at > at))
        .order_by(Deployment.start.desc())
        .limit(1)
    )
