"""The control room's data: councils, people, units, their heartbeats and events, sites, deployments.

Tables are created by the Alembic migrations in control_room/migrations (the source of truth for
the schema, including the triggers that keep audit_log append-only); these classes map them.
"Created at" times have no default here: control_room.clock stamps them from the injected clock.
"""

from __future__ import annotations

import enum
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Date,
    DateTime,
    Enum,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship
from werkzeug.security import check_password_hash

from control_room import clock as _clock  # noqa: F401 (registers the row-stamping listener)
from control_room.hashing import hash_password


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC in, timezone-aware UTC out, on SQLite (naive storage) and PostgreSQL."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Role(enum.StrEnum):
    OPERATOR = "operator"
    OFFICER = "officer"
    ENGINEER = "engineer"
    ADMIN = "admin"


class EventState(enum.StrEnum):
    SNAPSHOT_UPLOADED = "snapshot_uploaded"
    CLIP_UPLOADED = "clip_uploaded"


class ReviewState(enum.StrEnum):
    """Where an event is in the operators' workflow: new, acknowledged (someone is on it), reviewed."""

    NEW = "new"
    ACKNOWLEDGED = "acknowledged"
    REVIEWED = "reviewed"


class InstructionType(enum.StrEnum):
    UPLOAD_RANGE = "upload_range"
    CONFIG_VERSION = "config_version"
    PING = "ping"
    HOLD_RANGE = "hold_range"  # evidential hold: keep [start, end] past retention (control_room.evidence)
    RELEASE_HOLD = "release_hold"


def _enum(cls: type[enum.Enum], name: str) -> Enum:
    return Enum(cls, name=name, values_callable=lambda e: [m.value for m in e], native_enum=False,
                length=32, validate_strings=True)


class Base(DeclarativeBase):
    type_annotation_map = {datetime: UTCDateTime, dict[str, Any]: JSON, list[Any]: JSON}


class Council(Base):
    __tablename__ = "councils"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    slug: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime]

    units: Mapped[list[Unit]] = relationship(back_populates="council")


class User(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    role: Mapped[Role] = mapped_column(_enum(Role, "role"))
    council_id: Mapped[int | None] = mapped_column(ForeignKey("councils.id"), index=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime]
    last_login_at: Mapped[datetime | None]
    sessions_valid_after: Mapped[datetime | None]  # set at logout: sessions begun before it are over
    must_change_password: Mapped[bool] = mapped_column(Boolean, default=False, server_default="0")

    council: Mapped[Council | None] = relationship()

    def set_password(self, password: str) -> None:
        """Slow salted hash (werkzeug's scrypt); the password itself is never stored."""
        self.password_hash = hash_password(password)

    def check_password(self, password: str) -> bool:
        return bool(self.password_hash) and check_password_hash(self.password_hash, password)

    @property
    def partnership_wide(self) -> bool:
        """An admin with no council sees every council."""
        return self.council_id is None and self.role == Role.ADMIN


class Unit(Base):
    __tablename__ = "units"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    unit_id: Mapped[str] = mapped_column(String(64), unique=True)
    council_id: Mapped[int] = mapped_column(ForeignKey("councils.id"), index=True)
    name: Mapped[str] = mapped_column(String(200), default="")
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    token_created_at: Mapped[datetime]
    revoked_at: Mapped[datetime | None]
    created_at: Mapped[datetime]
    last_seen_at: Mapped[datetime | None]
    last_seq: Mapped[int | None] = mapped_column(BigInteger)
    last_state: Mapped[dict[str, Any] | None]
    last_sample_at: Mapped[datetime | None]
    software_version: Mapped[str | None] = mapped_column(String(64))
    lat: Mapped[float | None] = mapped_column(Float)
    lon: Mapped[float | None] = mapped_column(Float)
    position_at: Mapped[datetime | None]
    gps_flag: Mapped[str | None] = mapped_column(String(200))  # why the latest fix is not believed

    council: Mapped[Council] = relationship(back_populates="units")
    deployments: Mapped[list[Deployment]] = relationship(
        back_populates="unit", order_by="Deployment.start.desc()"
    )


class HeartbeatSample(Base):
    """One point of the unit page's charts (kept at most every sample_interval_s per unit)."""

    __tablename__ = "heartbeat_samples"
    __table_args__ = (Index("ix_heartbeat_samples_unit_at", "unit_pk", "at"),)

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    unit_pk: Mapped[int] = mapped_column(ForeignKey("units.id", ondelete="CASCADE"))
    at: Mapped[datetime]
    signal_percent: Mapped[float | None] = mapped_column(Float)
    disk_free_bytes: Mapped[int | None] = mapped_column(BigInteger)
    queue_depth: Mapped[int | None] = mapped_column(Integer)
    cpu_temp_c: Mapped[float | None] = mapped_column(Float)


class StaleHeartbeat(Base):
    """A heartbeat older than the unit's last applied one: kept as history, never its current state."""

    __tablename__ = "stale_heartbeats"
    __table_args__ = (Index("ix_stale_heartbeats_unit_received", "unit_pk", "received_at"),)

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    unit_pk: Mapped[int] = mapped_column(ForeignKey("units.id", ondelete="CASCADE"))
    received_at: Mapped[datetime]
    seq: Mapped[int | None] = mapped_column(BigInteger)
    boot_id: Mapped[str | None] = mapped_column(String(64))
    sent_at: Mapped[datetime | None]
    reason: Mapped[str] = mapped_column(String(200))
    state: Mapped[dict[str, Any]]


class Site(Base):
    __tablename__ = "sites"
    __table_args__ = (UniqueConstraint("council_id", "name", name="uq_sites_council_name"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    council_id: Mapped[int] = mapped_column(ForeignKey("councils.id"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    address: Mapped[str] = mapped_column(Text, default="")
    lat: Mapped[float] = mapped_column(Float)
    lon: Mapped[float] = mapped_column(Float)
    created_at: Mapped[datetime]
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))

    council: Mapped[Council] = relationship()


class Deployment(Base):
    """A unit placed at a site for a stated purpose (Surveillance Camera Code), until recovered."""

    __tablename__ = "deployments"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    unit_pk: Mapped[int] = mapped_column(ForeignKey("units.id"), index=True)
    site_id: Mapped[int] = mapped_column(ForeignKey("sites.id"), index=True)
    purpose: Mapped[str] = mapped_column(Text)
    dpia_ref: Mapped[str] = mapped_column(String(100))
    signage_confirmed: Mapped[bool] = mapped_column(Boolean, default=False)
    start: Mapped[datetime]
    planned_end: Mapped[datetime | None]
    review_date: Mapped[date] = mapped_column(Date)
    recovered_at: Mapped[datetime | None]
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime | None]  # set by an edit or a recorded review (live pages look here)

    unit: Mapped[Unit] = relationship(back_populates="deployments")
    site: Mapped[Site] = relationship()
    created_by: Mapped[User | None] = relationship()


class Event(Base):
    __tablename__ = "events"
    __table_args__ = (
        Index("ix_events_council_start", "council_id", "start"),
        Index("ix_events_unit_start", "unit_pk", "start"),
        Index("ix_events_received_at", "received_at"),
        Index("ix_events_council_review", "council_id", "review_state"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    event_id: Mapped[str] = mapped_column(String(128), unique=True)
    unit_pk: Mapped[int] = mapped_column(ForeignKey("units.id"))
    council_id: Mapped[int] = mapped_column(ForeignKey("councils.id"))
    site: Mapped[str] = mapped_column(String(200), default="")
    site_id: Mapped[int | None] = mapped_column(ForeignKey("sites.id"), index=True)
    deployment_id: Mapped[int | None] = mapped_column(ForeignKey("deployments.id"), index=True)
    start: Mapped[datetime]
    end: Mapped[datetime | None]
    clip_start: Mapped[datetime | None]
    clip_end: Mapped[datetime | None]
    peak_score: Mapped[float | None] = mapped_column(Float)
    peak_time: Mapped[datetime | None]
    boxes: Mapped[list[Any]] = mapped_column(default=list)
    state: Mapped[EventState] = mapped_column(_enum(EventState, "event_state"))
    bucket: Mapped[str] = mapped_column(String(63))
    objects: Mapped[dict[str, Any]] = mapped_column(default=dict)
    clock_synced: Mapped[bool | None] = mapped_column(Boolean)
    previous_event_id: Mapped[str | None] = mapped_column(String(128))
    received_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    review_state: Mapped[ReviewState] = mapped_column(
        _enum(ReviewState, "review_state"), default=ReviewState.NEW, server_default=ReviewState.NEW.value
    )
    review_by: Mapped[str] = mapped_column(String(64), default="", server_default="")
    review_at: Mapped[datetime | None]

    unit: Mapped[Unit] = relationship()
    council: Mapped[Council] = relationship()
    site_ref: Mapped[Site | None] = relationship()
    deployment: Mapped[Deployment | None] = relationship()


class EventAction(Base):
    """One step of the operators' workflow on an event (acknowledge, review, note, reopen): who, when.

    Rows are only added; their increasing id is the cursor live pages use to fetch changed rows.
    """

    __tablename__ = "event_actions"
    __table_args__ = (Index("ix_event_actions_event", "event_pk", "id"),)

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    event_pk: Mapped[int] = mapped_column(ForeignKey("events.id"))
    at: Mapped[datetime]
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    username: Mapped[str] = mapped_column(String(64), default="")
    action: Mapped[str] = mapped_column(String(32))
    note: Mapped[str] = mapped_column(Text, default="")


class DeploymentReview(Base):
    """A recorded review of a deployment (Surveillance Camera Code): outcome, who, when, next due date."""

    __tablename__ = "deployment_reviews"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    deployment_id: Mapped[int] = mapped_column(ForeignKey("deployments.id"), index=True)
    at: Mapped[datetime]
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    username: Mapped[str] = mapped_column(String(64), default="")
    outcome: Mapped[str] = mapped_column(Text)
    next_review_date: Mapped[date] = mapped_column(Date)


class AuditLog(Base):
    """Append-only (database triggers refuse UPDATE and DELETE): who did what to which item, when."""

    __tablename__ = "audit_log"
    __table_args__ = (Index("ix_audit_log_item", "item_type", "item_id"),)

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    at: Mapped[datetime] = mapped_column(index=True)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    username: Mapped[str] = mapped_column(String(64), default="")
    action: Mapped[str] = mapped_column(String(64))
    item_type: Mapped[str] = mapped_column(String(32))
    item_id: Mapped[str] = mapped_column(String(128))
    detail: Mapped[dict[str, Any]] = mapped_column(default=dict)


class UserSession(Base):
    """One logged-in browser (control_room.sessions): ended by logout, idle time, lifetime or an admin."""

    __tablename__ = "user_sessions"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    sid_hash: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    created_at: Mapped[datetime]
    last_seen_at: Mapped[datetime]
    ended_at: Mapped[datetime | None]
    ended_reason: Mapped[str | None] = mapped_column(String(32))  # logout, everywhere, idle, disabled...
    ip: Mapped[str] = mapped_column(String(64), default="")
    user_agent: Mapped[str] = mapped_column(String(200), default="")


class PasswordToken(Base):
    """A one-time link to set a password (invitation or reset); only its SHA-256 is stored."""

    __tablename__ = "password_tokens"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    purpose: Mapped[str] = mapped_column(String(16))  # invite, reset
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime]
    used_at: Mapped[datetime | None]


class LoginFailure(Base):
    """A failed or throttled log-in: the limits (control_room.login_limits) and admins read these."""

    __tablename__ = "login_failures"
    __table_args__ = (
        Index("ix_login_failures_username_at", "username", "at"),
        Index("ix_login_failures_ip_at", "ip", "at"),
        Index("ix_login_failures_device_at", "device", "at"),
    )

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    at: Mapped[datetime] = mapped_column(index=True)
    username: Mapped[str] = mapped_column(String(64))
    ip: Mapped[str] = mapped_column(String(64))
    device: Mapped[str | None] = mapped_column(String(32))  # a known device's id (its signed cookie)
    throttled: Mapped[bool] = mapped_column(Boolean, default=False)  # refused before any password check


class Instruction(Base):
    """An instruction queued for a unit, delivered in heartbeat responses until the unit acks it."""

    __tablename__ = "instructions"
    __table_args__ = (Index("ix_instructions_unit_pending", "unit_pk", "acked_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    instruction_id: Mapped[str] = mapped_column(String(64), unique=True)
    unit_pk: Mapped[int] = mapped_column(ForeignKey("units.id"))
    type: Mapped[InstructionType] = mapped_column(_enum(InstructionType, "instruction_type"))
    params: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[datetime]
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    first_delivered_at: Mapped[datetime | None]
    delivery_count: Mapped[int] = mapped_column(Integer, default=0)
    acked_at: Mapped[datetime | None]

    unit: Mapped[Unit] = relationship()

    def to_wire(self) -> dict[str, Any]:
        return {"id": self.instruction_id, "type": self.type.value, **self.params}
