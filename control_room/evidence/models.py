"""The evidence area's data: disclosure requests, packages, share links, deliveries, holds, the register.

Mapped on control_room.models.Base; the tables come from migration 0010_evidence. Every time is UTC.
"""

from __future__ import annotations

import enum
from datetime import date, datetime
from typing import Any

from sqlalchemy import BigInteger, Boolean, Date, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from control_room.models import Base, Council, Unit, User, _enum


class LawfulBasis(enum.StrEnum):
    DPA_SCH2_PARA2 = "dpa_sch2_para2"
    PART3_LAW_ENFORCEMENT = "part3_law_enforcement"
    COURT_ORDER = "court_order"
    SUBJECT_ACCESS = "subject_access"
    OTHER = "other"


LAWFUL_BASIS_TEXT = {
    LawfulBasis.DPA_SCH2_PARA2: "DPA 2018 Sch. 2 Pt 1 para 2 (crime and taxation)",
    LawfulBasis.PART3_LAW_ENFORCEMENT: "DPA 2018 Part 3 (law enforcement processing)",
    LawfulBasis.COURT_ORDER: "Court order",
    LawfulBasis.SUBJECT_ACCESS: "Subject access request (UK GDPR Art. 15)",
    LawfulBasis.OTHER: "Other",
}


class RequestState(enum.StrEnum):
    RECEIVED = "received"
    APPROVED = "approved"
    REFUSED = "refused"
    PACKAGED = "packaged"


class DisclosureRequest(Base):
    """A police (or other) request for footage, as received on the authorised form, and its decision."""

    __tablename__ = "disclosure_requests"
    __table_args__ = (Index("ix_disclosure_requests_council_created", "council_id", "created_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    reference: Mapped[str] = mapped_column(String(32), unique=True)
    council_id: Mapped[int] = mapped_column(ForeignKey("councils.id"))
    created_at: Mapped[datetime]
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    officer_name: Mapped[str] = mapped_column(String(200))
    officer_force: Mapped[str] = mapped_column(String(200), index=True)
    officer_collar: Mapped[str] = mapped_column(String(32))
    officer_email: Mapped[str] = mapped_column(String(254))
    authorising_name: Mapped[str] = mapped_column(String(200))
    authorising_rank: Mapped[str] = mapped_column(String(64))
    crime_ref: Mapped[str] = mapped_column(String(100), index=True)
    lawful_basis: Mapped[LawfulBasis] = mapped_column(_enum(LawfulBasis, "lawful_basis"))
    lawful_basis_other: Mapped[str] = mapped_column(Text, default="")
    reason: Mapped[str] = mapped_column(Text)
    unit_pk: Mapped[int | None] = mapped_column(ForeignKey("units.id"))
    range_start: Mapped[datetime | None]
    range_end: Mapped[datetime | None]
    event_ids: Mapped[list[Any]] = mapped_column(default=list)
    state: Mapped[RequestState] = mapped_column(
        _enum(RequestState, "request_state"), default=RequestState.RECEIVED
    )
    decided_at: Mapped[datetime | None]
    decided_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    decision_reason: Mapped[str] = mapped_column(Text, default="")
    instruction_ids: Mapped[list[Any]] = mapped_column(default=list)  # upload_range asked of the unit

    council: Mapped[Council] = relationship()
    unit: Mapped[Unit | None] = relationship()
    created_by: Mapped[User | None] = relationship(foreign_keys=[created_by_id])
    decided_by: Mapped[User | None] = relationship(foreign_keys=[decided_by_id])
    packages: Mapped[list[EvidencePackage]] = relationship(
        back_populates="request", order_by="EvidencePackage.id"
    )

    @property
    def basis_text(self) -> str:
        text = LAWFUL_BASIS_TEXT[self.lawful_basis]
        return f"{text}: {self.lawful_basis_other}" if self.lawful_basis == LawfulBasis.OTHER else text


class EvidencePackage(Base):
    """One built, signed evidence zip (BagIt) for a request; the file lives under the evidence folder."""

    __tablename__ = "evidence_packages"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    request_id: Mapped[int] = mapped_column(ForeignKey("disclosure_requests.id"), index=True)
    exhibit_ref: Mapped[str] = mapped_column(String(64), unique=True)
    file_name: Mapped[str] = mapped_column(String(200))
    size: Mapped[int] = mapped_column(BigInteger)
    sha256: Mapped[str] = mapped_column(String(64))
    tagmanifest_sha256: Mapped[str] = mapped_column(String(64))
    master_files: Mapped[int] = mapped_column(Integer)
    objects: Mapped[list[Any]] = mapped_column(default=list)  # [{bucket, key, version_id, sha256}]
    created_at: Mapped[datetime]
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))

    request: Mapped[DisclosureRequest] = relationship(back_populates="packages")


class ShareLink(Base):
    """A link for one named recipient: only the token's hash is kept; a code sent by email opens it."""

    __tablename__ = "share_links"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    package_id: Mapped[int] = mapped_column(ForeignKey("evidence_packages.id"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    recipient_name: Mapped[str] = mapped_column(String(200))
    recipient_org: Mapped[str] = mapped_column(String(200))
    recipient_email: Mapped[str] = mapped_column(String(254))
    created_at: Mapped[datetime]
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    expires_at: Mapped[datetime]
    revoked_at: Mapped[datetime | None]
    revoked_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    code_hash: Mapped[str | None] = mapped_column(String(64))  # None once used (one-time)
    code_sent_at: Mapped[datetime | None]
    failed_codes: Mapped[int] = mapped_column(Integer, default=0)
    locked_at: Mapped[datetime | None]
    opened_at: Mapped[datetime | None]
    receipt_at: Mapped[datetime | None]
    receipt: Mapped[dict[str, Any]] = mapped_column(default=dict)
    downloads: Mapped[int] = mapped_column(Integer, default=0)

    package: Mapped[EvidencePackage] = relationship()


class PoliceStore(Base):
    """A force's own S3-compatible destination, configured once by an administrator.

    The secret key is not in the database: `secret_file` names a 0600 file holding it. `kind` leaves
    room for SFTP later.
    """

    __tablename__ = "police_stores"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    force: Mapped[str] = mapped_column(String(200))
    council_id: Mapped[int | None] = mapped_column(ForeignKey("councils.id"))  # None = every council
    kind: Mapped[str] = mapped_column(String(16), default="s3")
    endpoint_url: Mapped[str] = mapped_column(String(500), default="")
    region: Mapped[str] = mapped_column(String(64), default="eu-west-2")
    bucket: Mapped[str] = mapped_column(String(63))
    prefix: Mapped[str] = mapped_column(String(200), default="")
    access_key_id: Mapped[str] = mapped_column(String(128), default="")
    secret_file: Mapped[str] = mapped_column(String(500), default="")
    ca_bundle: Mapped[str] = mapped_column(String(500), default="")
    created_at: Mapped[datetime]
    active: Mapped[bool] = mapped_column(Boolean, default=True)


class Delivery(Base):
    """A package pushed to a police store, and whether it was verified there after upload."""

    __tablename__ = "evidence_deliveries"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    package_id: Mapped[int] = mapped_column(ForeignKey("evidence_packages.id"), index=True)
    store_id: Mapped[int] = mapped_column(ForeignKey("police_stores.id"))
    started_at: Mapped[datetime]
    finished_at: Mapped[datetime | None]
    state: Mapped[str] = mapped_column(String(16), default="started")  # started, verified, failed
    objects: Mapped[list[Any]] = mapped_column(default=list)
    error: Mapped[str] = mapped_column(Text, default="")
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))

    package: Mapped[EvidencePackage] = relationship()
    store: Mapped[PoliceStore] = relationship()


class EvidenceHold(Base):
    """Footage kept past retention: S3 legal holds on object versions plus an instruction to the unit."""

    __tablename__ = "evidence_holds"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    council_id: Mapped[int] = mapped_column(ForeignKey("councils.id"), index=True)
    request_id: Mapped[int | None] = mapped_column(ForeignKey("disclosure_requests.id"))
    unit_pk: Mapped[int | None] = mapped_column(ForeignKey("units.id"))
    start: Mapped[datetime | None]
    end: Mapped[datetime | None]
    reason: Mapped[str] = mapped_column(Text)
    review_date: Mapped[date] = mapped_column(Date)
    objects: Mapped[list[Any]] = mapped_column(default=list)  # [{bucket, key, version_id}]
    instruction_id: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime]
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    released_at: Mapped[datetime | None]
    released_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    release_reason: Mapped[str] = mapped_column(Text, default="")

    request: Mapped[DisclosureRequest | None] = relationship()
    unit: Mapped[Unit | None] = relationship()


class RegisterEntry(Base):
    """One line of the disclosure register (ICO): request, decision, package, delivery, download..."""

    __tablename__ = "disclosure_register"
    __table_args__ = (Index("ix_disclosure_register_council_at", "council_id", "at"),)

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    at: Mapped[datetime]
    council_id: Mapped[int] = mapped_column(ForeignKey("councils.id"))
    request_id: Mapped[int | None] = mapped_column(ForeignKey("disclosure_requests.id"), index=True)
    action: Mapped[str] = mapped_column(String(64))
    outcome: Mapped[str] = mapped_column(String(16), default="ok")  # ok, refused
    actor: Mapped[str] = mapped_column(String(200), default="")
    recipient_name: Mapped[str] = mapped_column(String(200), default="")
    recipient_org: Mapped[str] = mapped_column(String(200), default="")
    ip: Mapped[str] = mapped_column(String(64), default="")
    detail: Mapped[dict[str, Any]] = mapped_column(default=dict)

    request: Mapped[DisclosureRequest | None] = relationship()


class EvidenceRoleGrant(Base):
    """Per-council override of which roles may do an evidence action (see evidence.roles)."""

    __tablename__ = "evidence_role_grants"
    __table_args__ = (UniqueConstraint("council_id", "permission", name="uq_evidence_role_grants"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    council_id: Mapped[int] = mapped_column(ForeignKey("councils.id"))
    permission: Mapped[str] = mapped_column(String(32))
    roles: Mapped[list[Any]] = mapped_column(default=list)


class UnitSigningKey(Base):
    """A unit's manifest public key (Ed25519, base64): registered, or pinned on first verified use."""

    __tablename__ = "unit_signing_keys"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    unit_pk: Mapped[int] = mapped_column(ForeignKey("units.id"), unique=True)
    public_key: Mapped[str] = mapped_column(String(64))
    source: Mapped[str] = mapped_column(String(16), default="pinned")  # registered, pinned
    first_seen_at: Mapped[datetime]
