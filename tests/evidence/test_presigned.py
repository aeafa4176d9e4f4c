"""Share downloads by presigned URL: with an evidence bucket configured, the package is stored there
when built and each download click gets its own URL valid at most 5 minutes (recorded as such)."""

from __future__ import annotations

import hashlib
import uuid
from datetime import timedelta
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from sqlalchemy import select

from control_room.db import get_engine, session_scope
from control_room.evidence.models import RegisterEntry
from tests.control_room.web_fixtures import csrf_from
from tests.evidence.conftest import REGION, T0, s3
from tests.evidence.flow import approved_and_packaged
from tests.evidence.test_share import enter, make_link


@pytest.fixture
def settings(settings, moto):  # the conftest's settings, plus an evidence bucket
    name = f"evidence-{uuid.uuid4().hex[:8]}"
    s3(moto).create_bucket(Bucket=name, CreateBucketConfiguration={"LocationConstraint": REGION})
    return settings.model_copy(update={"evidence_bucket": name, "presign_ttl_s": 3600})


def test_each_click_gets_a_short_presigned_url(
    app, factory, moto, bucket, segments, unit_key, smtp, settings
):
    admin, rid, pkg = approved_and_packaged(
        app, factory, moto, bucket, segments, unit_key, T0 + timedelta(seconds=1), T0 + timedelta(seconds=5)
    )
    link, code = make_link(admin, rid, pkg.id, smtp)
    police = app.test_client()
    assert enter(police, link, code).status_code == 302
    csrf = csrf_from(police.get(link).get_data(as_text=True))
    police.post(link + "/receipt", data={"csrf_token": csrf, "name": "PC Jane Smith", "confirm": "yes"})
    first = police.get(link + "/download")
    second = police.get(link + "/download")
    assert first.status_code == second.status_code == 303
    query = parse_qs(urlsplit(first.headers["Location"]).query)
    assert query["X-Amz-Expires"] == ["300"]  # capped at 5 minutes even though presign_ttl_s is an hour
    whole = requests.get(first.headers["Location"], timeout=30)
    assert whole.status_code == 200
    assert hashlib.sha256(whole.content).hexdigest() == pkg.sha256
    part = requests.get(second.headers["Location"], headers={"Range": "bytes=100-199"}, timeout=30)
    assert part.status_code == 206 and part.content == whole.content[100:200]
    with session_scope(get_engine(app)) as s:
        vias = [
            r.detail.get("via")
            for r in s.scalars(select(RegisterEntry).where(RegisterEntry.action == "download"))
        ]
    assert vias == ["presigned URL, 300 s", "presigned URL, 300 s"]
