"""Provisioning's records in the control room: each unit's registered manifest public key, thefts
(`cctv-provision unit stolen`) with the events they put outside the chain of custody, commissioning.

Written by `cctv-provision` (provisioning/) in the same transaction as the unit changes it makes;
read by the unit API (a stolen unit is refused) and by pages that show an event's custody.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, ForeignKey, Integer, String, Text, or_, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from control_room import audit
from control_room.evidence.models import UnitSigningKey
from control_room.models import Base, Event, Unit
from control_room.provision import ProvisionError


class UnitTheft(Base):
    """A unit reported stolen: refused from reported_at; its events uploaded since `since` are suspect."""

    __tablename__ = "unit_thefts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    unit_pk: Mapped[int] = mapped_column(ForeignKey("units.id"), unique=True)
    since: Mapped[datetime]
    reported_at: Mapped[datetime]
    reported_by: Mapped[str] = mapped_column(String(64), default="")


class EventCustodyFlag(Base):
    """An event outside the chain of custody (uploaded, or started, after its unit's theft)."""

    __tablename__ = "event_custody_flags"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    event_pk: Mapped[int] = mapped_column(ForeignKey("events.id"), unique=True)
    reason: Mapped[str] = mapped_column(String(200))
    flagged_at: Mapped[datetime]


class CommissioningRecord(Base):
    """The result of `cctv-provision verify` on site: every check, pass or fail, and who ran it."""

    __tablename__ = "commissioning_records"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    unit_pk: Mapped[int] = mapped_column(ForeignKey("units.id"), index=True)
    at: Mapped[datetime]
    engineer: Mapped[str] = mapped_column(String(64), default="")
    passed: Mapped[bool] = mapped_column(Boolean)
    checks: Mapped[list[Any]] = mapped_column(default=list)
    record_text: Mapped[str] = mapped_column(Text, default="")


class StolenUnit(ProvisionError):
    """The unit was reported stolen: it is never given a token or credentials again."""


def register_public_key(session: Session, unit: Unit, public_key_b64: str, now: datetime) -> None:
    """The unit's manifest key (raw Ed25519, base64) as provisioned: evidence checks every manifest
    against it (control_room.evidence.sources.unit_key), instead of pinning the first one seen."""
    session.add(UnitSigningKey(unit_pk=unit.id, public_key=public_key_b64, source="registered",
                               first_seen_at=now))
    session.flush()


def public_key(session: Session, unit: Unit) -> UnitSigningKey | None:
    return session.scalar(select(UnitSigningKey).where(UnitSigningKey.unit_pk == unit.id))


def theft(session: Session, unit: Unit) -> UnitTheft | None:
    return session.scalar(select(UnitTheft).where(UnitTheft.unit_pk == unit.id))


def refuse_if_stolen(session: Session, unit: Unit) -> None:
    found = theft(session, unit)
    if found is not None:
        raise StolenUnit(f"unit {unit.unit_id!r} was reported stolen at {found.reported_at:%Y-%m-%d %H:%M}Z; "
                         "it is refused for good (provision a new unit id)")


def report_stolen(session: Session, unit: Unit, since: datetime, now: datetime, by: str = "") -> int:
    """Revoke the unit's token now, record the theft and flag its events since `since` (received or
    started then or later). Returns how many events were flagged; the caller commits."""
    if unit.revoked_at is None:
        unit.revoked_at = now
    if theft(session, unit) is None:
        session.add(UnitTheft(unit_pk=unit.id, since=since, reported_at=now, reported_by=by))
    flagged = flag_events_since(session, unit, since, now)
    audit.record(session, None, "unit_stolen", "unit", unit.unit_id,
                 {"since": since.isoformat(), "events_flagged": flagged, "by": by}, at=now)
    session.flush()
    return flagged


def flag_events_since(session: Session, unit: Unit, since: datetime, now: datetime) -> int:
    already = select(EventCustodyFlag.event_pk)
    events = session.scalars(
        select(Event).where(Event.unit_pk == unit.id)
        .where(or_(Event.received_at >= since, Event.start >= since))
        .where(Event.id.not_in(already))
    ).all()
    reason = f"unit reported stolen; uploaded after {since.isoformat(timespec='seconds')}"
    for event in events:
        session.add(EventCustodyFlag(event_pk=event.id, reason=reason[:200], flagged_at=now))
    return len(events)


def custody_flag(session: Session, event: Event) -> EventCustodyFlag | None:
    """Why the event is outside the chain of custody, or None."""
    return session.scalar(select(EventCustodyFlag).where(EventCustodyFlag.event_pk == event.id))


def save_commissioning(session: Session, unit: Unit, at: datetime, engineer: str, passed: bool,
                       checks: list[dict[str, Any]], record_text: str) -> CommissioningRecord:
    row = CommissioningRecord(unit_pk=unit.id, at=at, engineer=engineer, passed=passed, checks=checks,
                              record_text=record_text)
    session.add(row)
    audit.record(session, None, "unit_commissioned" if passed else "unit_commissioning_failed", "unit",
                 unit.unit_id, {"engineer": engineer}, at=at)
    session.flush()
    return row


def commissioning_records(session: Session, unit: Unit) -> list[CommissioningRecord]:
    return list(session.scalars(select(CommissioningRecord).where(CommissioningRecord.unit_pk == unit.id)
                                .order_by(CommissioningRecord.id.desc())))
