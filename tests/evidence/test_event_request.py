"""A request for chosen events (not a time range): no upload_range is needed, the events' signed clips
are packaged as masters and the package verifies; an unknown or another council's event is refused."""

from __future__ import annotations

import subprocess
import sys
from datetime import timedelta

from sqlalchemy import func, select

from control_room.db import get_engine, session_scope
from control_room.evidence.models import DisclosureRequest, EvidencePackage
from control_room.evidence.package import package_path
from control_room.models import Event, EventState, Instruction, Unit
from tests.evidence.conftest import T0, UNIT, s3
from tests.evidence.flow import FORM, request_id, staff, unzip
from tests.evidence.unitsim import upload_record


def test_chosen_events_are_packaged_and_verify(
    app, factory, moto, bucket, segments, unit_key, tmp_path
) -> None:
    factory.unit(UNIT, "herts")
    factory.unit("beds-mcu-001", "beds")
    event_id = f"{UNIT}-20261118T101500.000Z"
    up = upload_record(
        s3(moto), bucket, UNIT, event_id, T0, T0 + timedelta(seconds=2), segments[:1], unit_key, role="clip"
    )
    with session_scope(get_engine(app)) as s:
        for unit_id, eid in ((UNIT, event_id), ("beds-mcu-001", "beds-mcu-001-20261118T101500.000Z")):
            unit = s.scalars(select(Unit).where(Unit.unit_id == unit_id)).one()
            s.add(
                Event(
                    event_id=eid,
                    unit_pk=unit.id,
                    council_id=unit.council_id,
                    start=T0,
                    end=T0,
                    state=EventState.CLIP_UPLOADED,
                    bucket=bucket,
                    objects={"manifest": {"key": up.prefix + "manifest.json"}},
                )
            )
    admin = staff(app, factory)
    refused = admin.post("/evidence/new", **FORM, event_ids="beds-mcu-001-20261118T101500.000Z")
    assert refused.status_code == 400 and "unknown event" in refused.get_data(as_text=True)
    rid = request_id(admin.post("/evidence/new", **FORM, event_ids=event_id))
    assert admin.post(f"/evidence/{rid}/decide", decision="approve").status_code == 302
    assert admin.post(f"/evidence/{rid}/package").status_code == 302
    with session_scope(get_engine(app)) as s:
        assert s.scalar(select(func.count()).select_from(Instruction)) == 0
        assert s.get(DisclosureRequest, rid).event_ids == [event_id]
        pkg = s.scalars(select(EvidencePackage)).one()
    with app.app_context():
        from control_room.evidence.web import evidence_dir

        bag = unzip(package_path(evidence_dir(), pkg), tmp_path / "out")
    master = bag / "data" / "master" / UNIT / event_id / segments[0].name
    assert master.read_bytes() == segments[0].read_bytes()
    assert not (bag / "data" / "working").exists()
    result = subprocess.run(
        [sys.executable, "-I", "verify.py"], cwd=bag, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout


def test_footage_signed_by_another_key_than_the_units_is_refused(
    app, factory, moto, bucket, segments, unit_key
) -> None:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from control_room.evidence.models import RegisterEntry, UnitSigningKey
    from control_room.evidence.signing import raw_public

    factory.unit(UNIT, "herts")
    event_id = f"{UNIT}-20261118T101500.000Z"
    intruder = Ed25519PrivateKey.generate()
    up = upload_record(
        s3(moto), bucket, UNIT, event_id, T0, T0 + timedelta(seconds=2), segments[:1], intruder, role="clip"
    )
    import base64

    with session_scope(get_engine(app)) as s:
        unit = s.scalars(select(Unit).where(Unit.unit_id == UNIT)).one()
        s.add(
            UnitSigningKey(
                unit_pk=unit.id,
                public_key=base64.b64encode(raw_public(unit_key)).decode(),
                source="registered",
            )
        )  # as provisioning registers it
        s.add(
            Event(
                event_id=event_id,
                unit_pk=unit.id,
                council_id=unit.council_id,
                start=T0,
                end=T0,
                state=EventState.CLIP_UPLOADED,
                bucket=bucket,
                objects={"manifest": {"key": up.prefix + "manifest.json"}},
            )
        )
    admin = staff(app, factory)
    rid = request_id(admin.post("/evidence/new", **FORM, event_ids=event_id))
    admin.post(f"/evidence/{rid}/decide", decision="approve")
    page = admin.client.get(admin.post(f"/evidence/{rid}/package").headers["Location"]).get_data(as_text=True)
    assert "signed by a key that is not the unit&#39;s (registered)" in page
    with session_scope(get_engine(app)) as s:
        assert s.scalar(select(func.count()).select_from(EvidencePackage)) == 0
        last = s.scalars(select(RegisterEntry).order_by(RegisterEntry.id.desc())).first()
        assert (last.action, last.outcome) == ("packaged", "refused")
