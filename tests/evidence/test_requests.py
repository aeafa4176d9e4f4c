"""Disclosure requests through the real pages: bad input gets one clear refusal and creates nothing;
approval queues upload_range for the unit, refusal needs a reason; both are in the register; roles hold.
"""

from __future__ import annotations

import html
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from control_room.db import get_engine, session_scope
from control_room.evidence.models import DisclosureRequest, RegisterEntry, RequestState
from control_room.models import AuditLog, Instruction
from tests.evidence.conftest import T0, UNIT
from tests.evidence.flow import FORM, record_request, request_id, staff


def counts(app) -> tuple[int, int, int]:
    with session_scope(get_engine(app)) as s:
        return (
            s.scalar(select(func.count()).select_from(DisclosureRequest)),
            s.scalar(select(func.count()).select_from(RegisterEntry)),
            s.scalar(select(func.count()).select_from(Instruction)),
        )


@pytest.fixture
def admin(app, factory):
    factory.unit(UNIT, "herts")
    factory.unit("beds-mcu-001", "beds")
    return staff(app, factory)


NOW = T0 + timedelta(hours=1)  # the clock fixture


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            {"range_start": NOW + timedelta(minutes=5), "range_end": NOW + timedelta(minutes=10)},
            "the range reaches into the future",
        ),
        ({"range_start": T0 + timedelta(minutes=10), "range_end": T0}, "the range ends before it starts"),
        (
            {"range_start": NOW - timedelta(hours=25), "range_end": NOW - timedelta(minutes=1)},
            "the range is longer than the maximum of 24 h",
        ),
        ({"unit": "herts-mcu-999"}, "unknown unit 'herts-mcu-999'"),
        ({"unit": "beds-mcu-001"}, "unknown unit 'beds-mcu-001'"),  # another council's unit
        ({"crime_ref": ""}, "crime or incident reference is required"),
        ({"lawful_basis": ""}, "lawful basis is required"),
        ({"lawful_basis": "because"}, "lawful basis is required"),
        ({"lawful_basis": "other"}, "lawful basis text is required"),
        ({"officer_email": "not-an-email"}, "officer's email is not an email address"),
        ({"range_start": "yesterday"}, "is not a date and time"),
    ],
)
def test_bad_requests_are_refused_with_one_clear_error_and_nothing_created(
    app, admin, change, message
) -> None:
    start, end = change.pop("range_start", T0), change.pop("range_end", T0 + timedelta(minutes=5))
    unit = change.pop("unit", UNIT)
    if isinstance(start, str):
        answer = admin.post(
            "/evidence/new",
            **{**FORM, "unit_id": unit, "range_start": start, "range_end": "2026-11-18T10:20:00"},
        )
    else:
        answer = record_request(admin, start, end, unit=unit, **change)
    assert answer.status_code == 400
    page = html.unescape(answer.get_data(as_text=True))
    assert page.count('class="flash error"') == 1 and message in page, page[:3000]
    assert counts(app) == (0, 0, 0)


def test_approval_asks_the_unit_for_the_range_and_is_registered(app, admin, clock) -> None:
    clock.advance(8 * 3600)
    admin.login_again()  # eight hours idle ends a shift session
    rid = request_id(record_request(admin, T0, T0 + timedelta(hours=7)))  # longer than one upload_range
    assert admin.post(f"/evidence/{rid}/decide", decision="approve", note="form checked").status_code == 302
    with session_scope(get_engine(app)) as s:
        req = s.get(DisclosureRequest, rid)
        assert req.state == RequestState.APPROVED and req.reference == "DR-2026-00001"
        rows = s.scalars(select(Instruction).order_by(Instruction.id)).all()
        assert [r.type.value for r in rows] == ["upload_range", "upload_range"]
        assert (
            rows[0].params["start"] == "2026-11-18T10:15:00.000Z"
            and rows[1].params["end"] == "2026-11-18T17:15:00.000Z"
        )
        actions = s.scalars(select(RegisterEntry.action).order_by(RegisterEntry.id)).all()
        assert actions == ["request_recorded", "approved"]
        assert (
            s.scalar(select(func.count()).select_from(AuditLog).where(AuditLog.action == "evidence_approved"))
            == 1
        )
    page = admin.client.get(f"/evidence/{rid}").get_data(as_text=True)
    assert "waiting for the unit to take the request" in page
    # a decided request cannot be decided again
    assert admin.post(f"/evidence/{rid}/decide", decision="refuse", note="x").status_code == 400


def test_refusal_needs_a_reason_and_is_recorded(app, admin) -> None:
    rid = request_id(record_request(admin, T0, T0 + timedelta(minutes=5)))
    assert admin.post(f"/evidence/{rid}/decide", decision="refuse", note="").status_code == 400
    assert (
        admin.post(
            f"/evidence/{rid}/decide", decision="refuse", note="trawling: no named incident"
        ).status_code
        == 302
    )
    with session_scope(get_engine(app)) as s:
        req = s.get(DisclosureRequest, rid)
        assert req.state == RequestState.REFUSED and req.decision_reason == "trawling: no named incident"
        assert s.scalar(select(func.count()).select_from(Instruction)) == 0
        last = s.scalars(select(RegisterEntry).order_by(RegisterEntry.id.desc())).first()
        assert last.action == "refused" and last.detail["reason"] == "trawling: no named incident"
    assert admin.post(f"/evidence/{rid}/package").status_code == 302  # refused: no package
    with session_scope(get_engine(app)) as s:
        last = s.scalars(select(RegisterEntry).order_by(RegisterEntry.id.desc())).first()
        assert last.action == "packaged" and last.outcome == "refused"


def test_roles_are_per_council_and_configurable(app, admin, factory) -> None:
    from control_room.evidence import roles

    officer = staff(app, factory, "off1", "officer")
    operator = staff(app, factory, "op1", "operator")
    assert record_request(operator, T0, T0 + timedelta(minutes=5)).status_code == 403
    rid = request_id(record_request(officer, T0, T0 + timedelta(minutes=5)))
    assert (
        officer.post(f"/evidence/{rid}/decide", decision="approve").status_code == 403
    )  # default: admin only
    beds = staff(app, factory, "bedsadmin", "admin", "beds")
    assert beds.client.get(f"/evidence/{rid}").status_code == 404  # another council's request
    with session_scope(get_engine(app)) as s:
        council_id = s.get(DisclosureRequest, rid).council_id
        roles.set_roles(s, council_id, "approve", ["officer", "admin"])
    assert officer.post(f"/evidence/{rid}/decide", decision="approve").status_code == 302


def test_evidence_roles_command_configures_a_council_and_refuses_bad_input(
    app, admin, factory, settings, capsys
) -> None:
    from control_room import cli

    base = ["--database-url", settings.database_url, "evidence-roles"]
    assert cli.main([*base, "herts", "approve", "officer", "admin"]) == 0
    assert "herts: 'approve' allowed to admin, officer" in capsys.readouterr().out
    assert cli.main([*base, "herts", "approve", "chief"]) == 2
    assert "unknown role(s): chief" in capsys.readouterr().err
    assert cli.main([*base, "nowhere", "approve", "admin"]) == 2
    officer = staff(app, factory, "off2", "officer")
    rid = request_id(record_request(officer, T0, T0 + timedelta(minutes=5)))
    assert officer.post(f"/evidence/{rid}/decide", decision="approve").status_code == 302
    assert cli.main([*base, "herts", "approve", "--default"]) == 0
    with session_scope(get_engine(app)) as s:
        rows = select(func.count()).select_from(AuditLog).where(AuditLog.action == "evidence_roles")
        assert s.scalar(rows) == 2
