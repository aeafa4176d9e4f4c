"""`cctv-provision unit ...`: a unit's identity across the three places it lives (the store's IAM,
the control room, the Ansible inventory), created all-or-nothing, rotated, retired or cut off.

`add` checks everything it can first (read-only), then creates step by step, undoing the steps
already done if a later one fails; the control room's rows are committed last.
"""

from __future__ import annotations

import base64
import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import select
from sqlalchemy.orm import Session

from control_room import audit, custody, names
from control_room import provision as cr
from control_room.models import Council, Unit
from provisioning import control
from provisioning.inventory import Inventory, UnitSecrets
from provisioning.settings import ProvisionError, Settings
from provisioning.storage import UnitStorage


@dataclass(frozen=True)
class SigningKey:
    private_pem: str
    public_b64: str  # raw Ed25519 public key, base64 (as in the unit's manifests)
    fingerprint: str


def new_signing_key() -> SigningKey:
    key = Ed25519PrivateKey.generate()
    private = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption()).decode()
    pub = key.public_key()
    raw = pub.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return SigningKey(private, base64.b64encode(raw).decode(), hashlib.sha256(raw).hexdigest())


def _unit(session: Session, unit_id: str) -> Unit:
    names.check(names.UNIT_ID, unit_id, "unit id")
    unit = session.scalar(select(Unit).where(Unit.unit_id == unit_id))
    if unit is None:
        raise ProvisionError(f"no unit {unit_id!r} in the control room")
    return unit


def plain_vars(settings: Settings, unit_id: str, council: str, site: str, host: str) -> dict[str, Any]:
    return {
        "cctv_unit_id": unit_id,
        "cctv_council": council,
        "cctv_site": site,
        "cctv_ansible_host": host,
        "cctv_control_room_url": settings.control_room_url,
        "cctv_s3_endpoint_url": settings.s3_endpoint_url or "",
        "cctv_s3_region": settings.region,
        "cctv_s3_bucket": settings.bucket,
        "cctv_s3_prefix": settings.prefix,
        "cctv_retention_days": settings.retention_days,
        # the secrets themselves are in vault.yml beside this file
        "cctv_status_token": "{{ vault_cctv_status_token }}",
        "cctv_s3_access_key_id": "{{ vault_cctv_s3_access_key_id }}",
        "cctv_s3_secret_access_key": "{{ vault_cctv_s3_secret_access_key }}",
        "cctv_signing_key": "{{ vault_cctv_signing_key }}",
    }


def add(settings: Settings, unit_id: str, council: str, site: str = "", host: str = "",
        now: datetime | None = None) -> SigningKey:
    """Create the unit everywhere or nowhere. Returns the signing key (its public half is stored)."""
    now = now or datetime.now(UTC)
    names.check(names.UNIT_ID, unit_id, "unit id")
    names.check(names.COUNCIL_SLUG, council, "council id")
    if site:
        site = names.check_display_name(site, "site")
    inventory = Inventory(settings.inventory, settings.require_vault_password())
    inventory.check_password()
    if inventory.has(unit_id):
        raise ProvisionError(f"unit {unit_id!r} already exists in the inventory "
                             f"({inventory.host_vars(unit_id)})")
    eng = control.engine(settings)
    storage = UnitStorage(settings)
    undo: list[tuple[str, Callable[[], None]]] = []
    try:
        with Session(eng, expire_on_commit=False) as session:
            try:
                if session.scalar(select(Council.id).where(Council.slug == council)) is None:
                    raise ProvisionError(f"unknown council {council!r} (cctv-control-room create-council)")
                if session.scalar(select(Unit.id).where(Unit.unit_id == unit_id)) is not None:
                    raise ProvisionError(f"unit {unit_id!r} already exists in the control room")
                if storage.user_exists(unit_id):
                    raise ProvisionError(f"unit {unit_id!r} already has a storage user")
                unit, token = cr.create_unit(session, unit_id, council, site)
                key = new_signing_key()
                custody.register_public_key(session, unit, key.public_b64, now)
                audit.record(session, None, "unit_provisioned", "unit", unit_id,
                             {"council": council, "key_fingerprint": key.fingerprint}, at=now)
                access = storage.create_unit_user(unit_id, council)
                undo.append(("storage user", lambda: storage.delete_unit_user(unit_id)))
                secrets = UnitSecrets(access.access_key_id, access.secret_access_key, token, key.private_pem)
                inventory.write_unit(unit_id, plain_vars(settings, unit_id, council, site, host or unit_id),
                                     secrets)
                undo.append(("inventory", lambda: inventory.remove_unit(unit_id)))
                session.commit()
                return key
            except BaseException as exc:
                session.rollback()
                left = _roll_back(undo)
                if left:
                    raise ProvisionError(
                        f"{_one_line(exc)}; rollback FAILED, remove by hand: {left}") from None
                raise
    finally:
        eng.dispose()


def _roll_back(undo: list[tuple[str, Callable[[], None]]]) -> str:
    failed = []
    for what, step in reversed(undo):
        try:
            step()
        except Exception as exc:  # keep undoing the rest; report what is left
            failed.append(f"{what} ({_one_line(exc)})")
    return ", ".join(failed)


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


@dataclass(frozen=True)
class UnitRow:
    unit_id: str
    council: str
    state: str
    key_age_days: float | None
    keys: int
    last_heartbeat_age_s: float | None


def state_of(session: Session, unit: Unit) -> str:
    if custody.theft(session, unit) is not None:
        return "stolen"
    if unit.revoked_at is not None:
        return "retired"
    return "active"


def list_units(settings: Settings, now: datetime | None = None) -> list[UnitRow]:
    now = now or datetime.now(UTC)
    eng = control.engine(settings)
    storage = UnitStorage(settings)
    rows = []
    try:
        with Session(eng) as session:
            for unit in session.scalars(select(Unit).order_by(Unit.unit_id)):
                keys = storage.keys(unit.unit_id)
                newest = max((k.created_at for k in keys if k.created_at), default=None)
                rows.append(UnitRow(
                    unit.unit_id, unit.council.slug, state_of(session, unit),
                    (now - newest).total_seconds() / 86400 if newest else None, len(keys),
                    (now - unit.last_seen_at).total_seconds() if unit.last_seen_at else None))
    finally:
        eng.dispose()
    return rows


def retire(settings: Settings, unit_id: str, now: datetime | None = None) -> None:
    """Decommission: token revoked, storage user deleted, inventory entry removed; the control
    room keeps the unit, its events and its public key (its manifests still verify)."""
    now = now or datetime.now(UTC)
    eng = control.engine(settings)
    try:
        with Session(eng) as session:
            _unit(session, unit_id)
            cr.revoke_unit(session, unit_id, at=now)
            audit.record(session, None, "unit_retired", "unit", unit_id, {}, at=now)
            UnitStorage(settings).delete_unit_user(unit_id)
            session.commit()
    finally:
        eng.dispose()
    Inventory(settings.inventory, settings.vault_password or "").remove_unit(unit_id)


def stolen(settings: Settings, unit_id: str, since: datetime, now: datetime | None = None) -> tuple[int, int]:
    """Cut a stolen unit off at once. Both the token and the storage keys are attempted even if the
    other fails. Returns (storage keys deleted, events flagged)."""
    now = now or datetime.now(UTC)
    if since > now:
        raise ProvisionError(f"--since {since.isoformat()} is in the future")
    eng = control.engine(settings)
    errors: list[str] = []
    deleted = flagged = 0
    try:
        with Session(eng) as session:
            unit = _unit(session, unit_id)
            try:
                deleted = UnitStorage(settings).cut_off(unit_id)
            except ProvisionError as exc:
                errors.append(f"storage keys NOT revoked: {exc}")
            flagged = custody.report_stolen(session, unit, since, now, by="cctv-provision")
            session.commit()
    finally:
        eng.dispose()
    if errors:
        raise ProvisionError(f"token revoked and {flagged} events flagged, but {'; '.join(errors)}")
    return deleted, flagged


@dataclass(frozen=True)
class Rotation:
    finished: bool
    new_key_id: str
    old_key_id: str


def rotate(settings: Settings, unit_id: str, finish: bool = False) -> Rotation:
    """Start: a second key, written to the vault for the next Ansible run (both keys work meanwhile).
    Finish: once the unit has used the new key, the old one is deleted."""
    inventory = Inventory(settings.inventory, settings.require_vault_password())
    eng = control.engine(settings)
    try:
        with Session(eng) as session:
            unit = _unit(session, unit_id)
            custody.refuse_if_stolen(session, unit)
            if unit.revoked_at is not None:
                raise ProvisionError(f"unit {unit_id!r} is retired")
    finally:
        eng.dispose()
    storage = UnitStorage(settings)
    secrets = inventory.read_secrets(unit_id)
    keys = storage.keys(unit_id)
    current = secrets.s3_access_key_id
    others = [k for k in keys if k.access_key_id != current]
    if finish:
        if not others:
            raise ProvisionError(f"no rotation in progress for {unit_id!r}")
        if storage.key_last_used(current) is None:
            raise ProvisionError(f"{unit_id} has not used its new key yet: run ansible-playbook site.yml "
                                 f"--limit {unit_id} and wait for an upload (verify makes one)")
        for old in others:
            storage.delete_key(unit_id, old.access_key_id)
        inventory.replace_secrets(unit_id, secrets, {"cctv_s3_previous_access_key_id": ""})
        return Rotation(True, current, ",".join(k.access_key_id for k in others))
    if others:
        raise ProvisionError(f"a rotation of {unit_id!r} is already in progress: finish it with "
                             f"`cctv-provision unit rotate-credentials {unit_id} --finish`")
    new = storage.create_key(unit_id)
    try:
        fresh = UnitSecrets(new.access_key_id, new.secret_access_key, secrets.status_token,
                            secrets.signing_key_pem)
        inventory.replace_secrets(unit_id, fresh, {"cctv_s3_previous_access_key_id": current})
    except BaseException:
        storage.delete_key(unit_id, new.access_key_id)
        raise
    return Rotation(False, new.access_key_id, current)


def wait_heartbeat(settings: Settings, unit_id: str, timeout_s: float, max_age_s: float,
                   poll_s: float = 2.0) -> float:
    """Block until the control room has a heartbeat from the unit at most max_age_s old (Ansible's
    last step). Returns its age in seconds; ProvisionError after timeout_s."""
    eng = control.engine(settings)
    deadline = time.monotonic() + timeout_s
    try:
        while True:
            with Session(eng) as session:
                unit = _unit(session, unit_id)
                if unit.revoked_at is not None:
                    raise ProvisionError(f"unit {unit_id!r} is revoked: it will never report")
                seen = unit.last_seen_at
            if seen is not None:
                age = (datetime.now(UTC) - seen).total_seconds()
                if age <= max_age_s:
                    return max(age, 0.0)
            if time.monotonic() >= deadline:
                last = f"last one {seen.isoformat(timespec='seconds')}" if seen else "none ever"
                raise ProvisionError(f"no heartbeat from {unit_id} within {timeout_s:.0f} s ({last}); "
                                     "see docs/field-engineer.md, 'No heartbeat'")
            time.sleep(poll_s)
    finally:
        eng.dispose()
