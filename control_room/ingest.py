"""What the unit API stores: a validated heartbeat becomes the unit's last state (plus a chart
sample now and then); an event notification creates one Event, whose content never changes after.

Records cannot be rewritten: a heartbeat older than the last one applied is kept as history only,
a stored event refuses different content (EventConflict, 409) and a repeat is idempotent.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

from sqlalchemy import Connection, bindparam, insert, select, update
from sqlalchemy.orm import Session

from control_room import gps, instructions
from control_room.config import Settings
from control_room.errors import EventConflict
from control_room.models import Deployment, Event, EventState, HeartbeatSample, StaleHeartbeat, Unit
from protocol.events import EventNote
from protocol.heartbeat import Heartbeat
from protocol.times import parse_aware

# What a unit states about an event when it first reports it; none of it may change afterwards.
FIXED_FIELDS = ("site", "start", "end", "clip_start", "clip_end", "peak_score", "peak_time", "boxes",
                "clock_synced", "previous_event_id", "bucket")


UNITS, SAMPLES, STALE = Unit.__table__, HeartbeatSample.__table__, StaleHeartbeat.__table__
# The unit's columns a heartbeat reads (control_room.api.units selects them with the token check).
UNIT_STATE_COLUMNS = ("id", "unit_id", "council_id", "revoked_at", "last_seq", "last_state", "last_sample_at",
                      "lat", "lon", "position_at")

# Built once (each request only binds values: no statement construction on the hot path).
_INSERT_STALE, _INSERT_SAMPLE = insert(STALE), insert(SAMPLES)
_UPDATE_UNIT = update(UNITS).where(UNITS.c.id == bindparam("unit_pk_"))


class UnitState(Protocol):
    """A unit as the heartbeat path reads it: a Unit, or a row of UNIT_STATE_COLUMNS."""

    id: int
    council_id: int
    last_seq: int | None
    last_state: dict[str, Any] | None
    last_sample_at: datetime | None
    lat: float | None
    lon: float | None
    position_at: datetime | None


@dataclass(frozen=True)
class HeartbeatResult:
    instructions: list[dict[str, Any]]
    sampled: bool
    stale: str | None = None  # why the heartbeat was kept as history only


def _parse(text: Any) -> datetime | None:
    if not isinstance(text, str):
        return None
    try:
        return parse_aware(text)
    except ValueError:
        return None


def staleness(unit: UnitState, hb: Heartbeat) -> str | None:
    """Why `hb` is older than the heartbeat last applied (seq within one boot, then sent time), or None."""
    last = unit.last_state or {}
    last_sent = _parse(last.get("sent_at"))
    same_boot = hb.boot_id is not None and hb.boot_id == last.get("boot_id")
    if same_boot and hb.seq is not None and unit.last_seq is not None and hb.seq <= unit.last_seq:
        return f"seq {hb.seq} is not after {unit.last_seq} in boot {hb.boot_id}"
    if hb.sent_at is not None and last_sent is not None and hb.sent_at < last_sent:
        return f"sent at {hb.sent_at.isoformat()}, before the last applied one ({last_sent.isoformat()})"
    return None


def store_heartbeat(conn: Connection, unit: UnitState, hb: Heartbeat, now: datetime,
                    settings: Settings) -> HeartbeatResult:
    """Apply the heartbeat (or keep a stale one as history), acknowledge and fetch instructions.

    A stale heartbeat still proves the unit is reachable (last_seen_at) and its acks still count;
    its state never replaces the current one. `unit` is the row read in this transaction (the one
    control_room.api.units authenticated); SQL Core statements on `conn`, the caller commits: the
    hot path of the unit API, a few statements and no ORM unit of work.
    """
    values: dict[str, Any] = {"last_seen_at": now}
    stale = staleness(unit, hb)
    if stale is not None:
        conn.execute(_INSERT_STALE, stale_row(unit.id, hb, now, stale))
    else:
        values.update(applied_values(unit, hb, now, settings))
    sampled = values.get("last_sample_at") == now
    if sampled:
        conn.execute(_INSERT_SAMPLE, sample_row(unit.id, hb, now))
    conn.execute(_UPDATE_UNIT, {"unit_pk_": unit.id, **values})  # SET the columns named in `values`
    instructions.acknowledge(conn, unit, hb.acked, now)
    # The token lookup may have said already that nothing is pending (acks only make that truer).
    pending = instructions.deliver(conn, unit, now) if getattr(unit, "pending_instructions", True) else []
    return HeartbeatResult(pending, sampled, stale)


def applied_values(unit: UnitState, hb: Heartbeat, now: datetime, settings: Settings) -> dict[str, Any]:
    """The unit's columns a current (not stale) heartbeat sets, besides last_seen_at; last_sample_at
    is `now` when a chart sample is due (sample_row)."""
    values: dict[str, Any] = {"last_state": hb.state(), "last_seq": hb.seq}
    if hb.software_version is not None:
        values["software_version"] = hb.software_version
    values.update(_position(unit, hb, now, settings))
    last = unit.last_sample_at
    if last is None or now - last >= timedelta(seconds=settings.sample_interval_s):
        values["last_sample_at"] = now
    return values


def _position(unit: UnitState, hb: Heartbeat, now: datetime, settings: Settings) -> dict[str, Any]:
    """A plausible fix moves the unit; an implausible one is flagged (the fix stays in last_state)."""
    fix = hb.gps
    if fix is None or fix.fix not in ("2d", "3d") or fix.lat is None or fix.lon is None:
        return {}
    at = fix.time or now
    previous = None if unit.lat is None or unit.lon is None else (unit.lat, unit.lon, unit.position_at)
    flag = gps.implausible(fix.lat, fix.lon, at, previous, settings.gps_box(), settings.gps_max_speed_kmh)
    if flag is not None:
        return {"gps_flag": flag[:200]}
    return {"lat": fix.lat, "lon": fix.lon, "position_at": at, "gps_flag": None}


def stale_row(unit_pk: int, hb: Heartbeat, now: datetime, reason: str) -> dict[str, Any]:
    """The history row of a heartbeat kept but not applied (staleness gave `reason`)."""
    return {"unit_pk": unit_pk, "received_at": now, "seq": hb.seq, "boot_id": hb.boot_id,
            "sent_at": hb.sent_at, "reason": reason[:200], "state": hb.state()}


def sample_row(unit_pk: int, hb: Heartbeat, now: datetime) -> dict[str, Any]:
    return {
        "unit_pk": unit_pk,
        "at": now,
        "signal_percent": hb.modem.signal_percent if hb.modem else None,
        "disk_free_bytes": hb.disk.free_bytes if hb.disk else None,
        "queue_depth": hb.uploads.pending if hb.uploads else None,
        "cpu_temp_c": hb.system.cpu_temp_c if hb.system else None,
    }


def _fixed(note: EventNote) -> dict[str, Any]:
    return {"site": note.site, "start": note.start, "end": note.end, "clip_start": note.clip_start,
            "clip_end": note.clip_end, "peak_score": note.peak_score, "peak_time": note.peak_time,
            "boxes": [list(b) for b in note.boxes], "clock_synced": note.clock_synced,
            "previous_event_id": note.previous_event_id, "bucket": note.bucket}


def differences(event: Event, note: EventNote) -> list[str]:
    """The fields in which `note` contradicts the stored event (an object may be added, not changed)."""
    out = [name for name, value in _fixed(note).items() if getattr(event, name) != value]
    stored = event.objects or {}
    for kind, obj in note.objects:
        if obj is not None and kind in stored and stored[kind] != obj.model_dump():
            out.append(f"objects.{kind}")
    return out


def store_event(session: Session, unit: UnitState, note: EventNote, now: datetime) -> tuple[Event, bool]:
    """Create the event, or add newly uploaded objects to it; returns (event, created).

    EventConflict if the id belongs to another unit or the stored content differs. A repeat never
    downgrades the state. The event carries the control room's deployment at its start time.
    """
    event = session.scalar(select(Event).where(Event.event_id == note.event_id))
    created = event is None
    if event is None:
        event = Event(event_id=note.event_id, unit_pk=unit.id, council_id=unit.council_id,
                      received_at=now, state=EventState(note.state), objects={}, **_fixed(note))
        deployment = deployment_at(session, unit, note.start)
        if deployment is not None:
            event.deployment_id, event.site_id = deployment.id, deployment.site_id
        session.add(event)
    elif event.unit_pk != unit.id:
        raise EventConflict(f"event {note.event_id!r} belongs to another unit")
    elif diff := differences(event, note):
        raise EventConflict(f"event {note.event_id!r} is already stored with other content "
                            f"({', '.join(diff)}); a stored event cannot be rewritten", diff)
    added = {k: o.model_dump() for k, o in note.objects if o is not None and k not in (event.objects or {})}
    if added:
        event.objects = {**(event.objects or {}), **added}
    if note.state == EventState.CLIP_UPLOADED.value and event.state != EventState.CLIP_UPLOADED:
        event.state = EventState.CLIP_UPLOADED
    if created or added:
        event.updated_at = now
    return event, created


def deployment_at(session: Session, unit: UnitState, at: datetime) -> Deployment | None:
    """The control room's deployment of the unit at time `at`, if any."""
    return session.scalar(
        select(Deployment)
        .where(Deployment.unit_pk == unit.id, Deployment.start <= at)
        .where((Deployment.recovered_at.is_(None)) | (Deployment.recovered_at > at))
        .order_by(Deployment.start.desc())
        .limit(1)
    )
