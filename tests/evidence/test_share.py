"""Share links: the code arrives by real SMTP, the recipient enters it, confirms the receipt and
downloads (HTTP Range resumes); expired, revoked, locked, tampered and replayed attempts are refused,
every attempt is in the register and the audit log with the IP, and the register exports as CSV.
"""

from __future__ import annotations

import csv
import html
import io
import re
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from control_room.db import get_engine, session_scope
from control_room.evidence.models import RegisterEntry, ShareLink
from control_room.evidence.package import package_path
from control_room.models import AuditLog
from tests.control_room.web_fixtures import csrf_from
from tests.evidence.conftest import T0, code_from
from tests.evidence.flow import approved_and_packaged, staff

URL_RE = re.compile(r'id="share-url" readonly size="90" value="([^"]+)"')


@pytest.fixture
def packaged(app, factory, moto, bucket, segments, unit_key):
    admin, rid, pkg = approved_and_packaged(
        app, factory, moto, bucket, segments, unit_key, T0 + timedelta(seconds=1), T0 + timedelta(seconds=5)
    )
    with app.app_context():
        from control_room.evidence.web import evidence_dir

        path = package_path(evidence_dir(), pkg)
    return admin, rid, pkg, path


def make_link(admin, rid: int, pid: int, smtp, count: int = 1, days: int = 7) -> tuple[str, str]:
    answer = admin.post(
        f"/evidence/{rid}/packages/{pid}/share",
        name="PC Jane Smith",
        org="Hertfordshire Constabulary",
        email="jane.smith@herts.police.invalid",
        days=days,
    )
    assert answer.status_code == 200, answer.get_data(as_text=True)[:2000]
    url = html.unescape(URL_RE.search(answer.get_data(as_text=True)).group(1))
    message = smtp[1].wait_for(count)[count - 1]
    assert message["To"] == "jane.smith@herts.police.invalid"
    assert url.split("/share/")[1] not in message.get_payload(decode=True).decode()  # code and link apart
    return "/share/" + url.split("/share/")[1], code_from(message)


def enter(client, path: str, code: str):
    csrf = csrf_from(client.get(path).get_data(as_text=True))
    return client.post(path + "/code", data={"code": code, "csrf_token": csrf})


def register_rows(app) -> list[tuple[str, str]]:
    with session_scope(get_engine(app)) as s:
        return [(r.action, r.outcome) for r in s.scalars(select(RegisterEntry).order_by(RegisterEntry.id))]


def test_recipient_enters_the_code_confirms_receipt_and_downloads_with_ranges(app, packaged, smtp) -> None:
    admin, rid, pkg, path = packaged
    link, code = make_link(admin, rid, pkg.id, smtp)
    with session_scope(get_engine(app)) as s:
        stored = s.scalars(select(ShareLink)).one()
        assert link.rsplit("/", 1)[1] not in (stored.token_hash, stored.code_hash)  # only hashes are kept
    police = app.test_client()
    assert "Access code" in police.get(link).get_data(as_text=True)
    assert police.get(link + "/download").status_code == 403  # no code yet
    wrong = enter(police, link, "AAAAAAAA")
    assert wrong.status_code == 403 and "4 attempt(s) left" in wrong.get_data(as_text=True)
    assert enter(police, link, code.lower()).status_code == 302
    page = police.get(link).get_data(as_text=True)
    assert pkg.sha256 in page and "Confirm receipt" in page
    assert police.get(link + "/download").status_code == 403  # receipt first
    csrf = csrf_from(page)
    assert (
        police.post(
            link + "/receipt", data={"csrf_token": csrf, "name": "PC Jane Smith", "confirm": "yes"}
        ).status_code
        == 302
    )
    whole = police.get(link + "/download")
    assert whole.status_code == 200 and whole.data == path.read_bytes()
    assert whole.headers["Accept-Ranges"] == "bytes"
    part = police.get(link + "/download", headers={"Range": "bytes=1000-1999"})
    assert part.status_code == 206 and part.data == path.read_bytes()[1000:2000]
    rest = police.get(link + "/download", headers={"Range": "bytes=2000-"})
    assert part.data + rest.data == path.read_bytes()[1000:]

    rows = register_rows(app)
    for expected in [
        ("share_created", "ok"),
        ("share_open", "ok"),
        ("download", "refused"),
        ("share_code", "refused"),
        ("share_code", "ok"),
        ("receipt", "ok"),
        ("download", "ok"),
    ]:
        assert expected in rows, (expected, rows)
    with session_scope(get_engine(app)) as s:
        link_row = s.scalars(select(ShareLink)).one()
        assert link_row.receipt["zip_sha256"] == pkg.sha256 and link_row.downloads == 1
        audits = s.scalars(select(AuditLog).where(AuditLog.action.like("evidence_%"))).all()
        assert all(a.detail.get("ip") == "127.0.0.1" for a in audits)
        assert {"evidence_share_code_refused", "evidence_download", "evidence_receipt"} <= {
            a.action for a in audits
        }


def test_a_spent_code_cannot_be_replayed_and_five_wrong_codes_lock(app, packaged, smtp) -> None:
    admin, rid, pkg, _ = packaged
    link, code = make_link(admin, rid, pkg.id, smtp)
    assert enter(app.test_client(), link, code).status_code == 302
    other = app.test_client()  # someone replaying the link and the same code elsewhere
    assert enter(other, link, code).status_code == 403
    assert other.get(link + "/download").status_code == 403
    for _ in range(3):
        assert enter(other, link, "BBBBBBBB").status_code == 403
    locked = enter(other, link, "BBBBBBBB")  # the fifth wrong code (the replay was the first)
    assert locked.status_code == 410 and "locked" in locked.get_data(as_text=True)
    assert app.test_client().get(link).status_code == 410
    with session_scope(get_engine(app)) as s:
        assert s.scalars(select(ShareLink)).one().locked_at is not None
    assert register_rows(app).count(("share_code", "refused")) == 5
    audit_page = admin.client.get("/audit?action=evidence_share_code_refused").get_data(as_text=True)
    assert audit_page.count("disclosure DR-2026-00001") == 5  # the council's admin sees the recipient's tries


def test_expired_revoked_and_tampered_links_are_refused_and_recorded(app, packaged, smtp, clock) -> None:
    admin, rid, pkg, _ = packaged
    link, code = make_link(admin, rid, pkg.id, smtp, days=1)
    tampered = link[:-1] + ("A" if link[-1] != "A" else "B")
    assert app.test_client().get(tampered).status_code == 404
    with session_scope(get_engine(app)) as s:
        assert (
            s.scalars(select(AuditLog).where(AuditLog.action == "evidence_share_open_refused"))
            .one()
            .detail["reason"]
            == "unknown or altered token"
        )
    clock.advance(86400 + 1)
    expired = app.test_client().get(link)
    assert expired.status_code == 410 and "expired" in expired.get_data(as_text=True)
    admin.login_again()  # a day later the admin's shift session has ended

    link2, _ = make_link(admin, rid, pkg.id, smtp, count=2)
    police = app.test_client()
    assert police.get(link2).status_code == 200
    with session_scope(get_engine(app)) as s:
        sid = s.scalars(select(ShareLink).order_by(ShareLink.id.desc())).first().id
    admin.csrf = csrf_from(admin.client.get(f"/evidence/{rid}").get_data(as_text=True))
    assert admin.post(f"/evidence/shares/{sid}/revoke").status_code == 302
    revoked = police.get(link2)
    assert revoked.status_code == 410 and "revoked" in revoked.get_data(as_text=True)
    rows = register_rows(app)
    assert ("share_open", "refused") in rows and ("share_revoked", "ok") in rows
    assert rows.count(("share_created", "ok")) == 2


def test_share_lifetime_is_capped_and_the_register_exports_csv_per_council(
    app, packaged, smtp, factory
) -> None:
    admin, rid, pkg, _ = packaged
    too_long = admin.post(
        f"/evidence/{rid}/packages/{pkg.id}/share",
        name="PC Jane Smith",
        org="Herts Police",
        email="jane.smith@herts.police.invalid",
        days=30,
    )
    assert too_long.status_code == 302 and ("share_created", "refused") in register_rows(app)
    make_link(admin, rid, pkg.id, smtp)
    answer = admin.client.get("/evidence/register?format=csv&crime_ref=41/12345")
    assert answer.status_code == 200 and answer.mimetype == "text/csv"
    table = list(csv.reader(io.StringIO(answer.get_data(as_text=True))))
    assert table[0][:6] == ["time_utc", "time_uk", "council", "request", "crime_reference", "action"]
    actions = [(r[5], r[6]) for r in table[1:]]
    assert ("share_created", "refused") in actions and ("approved", "ok") in actions
    created = next(r for r in table[1:] if r[5] == "share_created" and r[6] == "ok")
    assert created[9:12] == [
        "PC Jane Smith",
        "Hertfordshire Constabulary",
        "DPA 2018 Sch. 2 Pt 1 para 2 (crime and taxation)",
    ]
    assert created[8] == "Hertfordshire Constabulary" and created[4] == "41/12345/26"
    none = admin.client.get("/evidence/register?format=csv&crime_ref=nothing-like-this")
    assert len(list(csv.reader(io.StringIO(none.get_data(as_text=True))))) == 1
    factory.unit("beds-mcu-001", "beds")
    beds = staff(app, factory, "bedsadmin", "admin", "beds")
    other = list(
        csv.reader(io.StringIO(beds.client.get("/evidence/register?format=csv").get_data(as_text=True)))
    )
    assert other == [table[0]]  # another council sees none of it
    page = admin.client.get("/evidence/register?force=Hertfordshire").get_data(as_text=True)
    assert "share_created" in page and "refused" in page


def test_package_path_is_private(packaged) -> None:
    _, _, _, path = packaged
    assert isinstance(path, Path) and (path.stat().st_mode & 0o077) == 0


def test_the_custody_record_runs_from_recording_to_download_and_is_signed(app, packaged, smtp) -> None:
    import base64
    import json

    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    from control_room.evidence.signing import raw_public

    admin, rid, pkg, _ = packaged
    link, code = make_link(admin, rid, pkg.id, smtp)
    police = app.test_client()
    enter(police, link, code)
    csrf = csrf_from(police.get(link).get_data(as_text=True))
    police.post(link + "/receipt", data={"csrf_token": csrf, "name": "PC Jane Smith", "confirm": "yes"})
    assert police.get(link + "/download").status_code == 200
    answer = admin.client.get(f"/evidence/{rid}/packages/{pkg.id}/custody.json")
    assert answer.status_code == 200
    with app.app_context():
        from control_room.evidence.web import signing_key

        public = raw_public(signing_key())
    Ed25519PublicKey.from_public_bytes(public).verify(
        base64.b64decode(answer.headers["X-Signature-Ed25519"]), answer.data
    )
    steps = [s["step"] for s in json.loads(answer.data)["custody"]]
    for step in (
        "recorded",
        "uploaded",
        "verified",
        "approved",
        "packaged",
        "delivered (share link)",
        "link opened with the access code",
        "receipt confirmed",
        "downloaded",
    ):
        assert step in steps, (step, steps)
    assert steps.index("recorded") < steps.index("packaged") < steps.index("downloaded")
