"""Steps of the disclosure process driven through the real web pages (Flask test client), shared by
the evidence tests: log in, record a request, approve it, let the "unit" upload, build the package.
"""

from __future__ import annotations

import re
import zipfile
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import select

from control_room.db import get_engine, session_scope
from control_room.evidence.models import DisclosureRequest, EvidencePackage
from control_room.models import Instruction
from tests.control_room.web_fixtures import csrf_from, login
from tests.evidence.conftest import UNIT, s3
from tests.evidence.unitsim import upload_record

FORM = {
    "officer_name": "PC Jane Smith",
    "officer_force": "Hertfordshire Constabulary",
    "officer_collar": "4321",
    "officer_email": "jane.smith@herts.police.invalid",
    "authorising_name": "Alan Jones",
    "authorising_rank": "Inspector",
    "crime_ref": "41/12345/26",
    "lawful_basis": "dpa_sch2_para2",
    "reason": "Criminal damage to a bus shelter, suspect seen on High St",
}


def uk(ts: datetime) -> str:
    """A form's datetime-local value (naive UK time) for a UTC time."""
    from zoneinfo import ZoneInfo

    return ts.astimezone(ZoneInfo("Europe/London")).strftime("%Y-%m-%dT%H:%M:%S")


@dataclass
class Staff:
    client: Any
    csrf: str
    username: str = "admin1"

    def login_again(self) -> None:
        """A new shift session, as after the clock moved past the idle limit."""
        self.csrf = login(self.client, self.username)

    def post(self, path: str, **data: Any) -> Any:
        return self.client.post(path, data={"csrf_token": self.csrf, **data})


def staff(
    app: Any, factory: Any, username: str = "admin1", role: str = "admin", council: str = "herts"
) -> Staff:
    factory.user(username, role, council)
    client = app.test_client()
    return Staff(client, login(client, username), username)


def record_request(who: Staff, start: datetime, end: datetime, unit: str = UNIT, **extra: Any) -> Any:
    return who.post(
        "/evidence/new", **{**FORM, "unit_id": unit, "range_start": uk(start), "range_end": uk(end), **extra}
    )


def request_id(answer: Any) -> int:
    assert answer.status_code == 302, answer.get_data(as_text=True)[:500]
    match = re.search(r"/evidence/(\d+)$", answer.headers["Location"])
    assert match, answer.headers["Location"]
    return int(match.group(1))


def instructions_of(app: Any, rid: int) -> list[Instruction]:
    with session_scope(get_engine(app)) as s:
        req = s.get(DisclosureRequest, rid)
        return list(s.scalars(select(Instruction).where(Instruction.instruction_id.in_(req.instruction_ids))))


def unit_uploads(
    app: Any, moto: str, bucket: str, rid: int, segments: list[Path], key: Any, unit: str = UNIT
) -> list[Any]:
    """What the unit does for each upload_range instruction of the request: sign and upload the range."""
    out = []
    for ins in instructions_of(app, rid):
        start = datetime.fromisoformat(ins.params["start"].replace("Z", "+00:00"))
        end = datetime.fromisoformat(ins.params["end"].replace("Z", "+00:00"))
        out.append(
            upload_record(
                s3(moto), bucket, unit, f"{unit}-range-{ins.instruction_id}", start, end, segments, key
            )
        )
    return out


def approved_and_packaged(
    app: Any,
    factory: Any,
    moto: str,
    bucket: str,
    segments: list[Path],
    key: Any,
    start: datetime,
    end: datetime,
) -> tuple[Staff, int, EvidencePackage]:
    factory.unit(UNIT, "herts")
    admin = staff(app, factory)
    rid = request_id(record_request(admin, start, end))
    assert admin.post(f"/evidence/{rid}/decide", decision="approve").status_code == 302
    unit_uploads(app, moto, bucket, rid, segments, key)
    page = admin.client.get(f"/evidence/{rid}").get_data(as_text=True)
    assert "complete" in page, page
    answer = admin.post(f"/evidence/{rid}/package")
    assert answer.status_code == 302
    with session_scope(get_engine(app)) as s:
        pkg = s.scalars(select(EvidencePackage).where(EvidencePackage.request_id == rid)).first()
        assert pkg is not None, admin.client.get(f"/evidence/{rid}").get_data(as_text=True)
    admin.csrf = csrf_from(admin.client.get(f"/evidence/{rid}").get_data(as_text=True))
    return admin, rid, pkg


def unzip(zip_path: Path, dest: Path) -> Path:
    with zipfile.ZipFile(zip_path) as zf:
        zf.extractall(dest)
        top = {n.split("/", 1)[0] for n in zf.namelist()}
    assert len(top) == 1, top
    return dest / top.pop()
