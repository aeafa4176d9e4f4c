"""The evidence area on PostgreSQL (a throwaway server): requests, a refusal that stores nothing, the
append-only register and its search and CSV; skipped where PostgreSQL is not installed."""

from __future__ import annotations

import csv
import io
from datetime import timedelta

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.exc import DBAPIError

from control_room.db import get_engine, session_scope
from control_room.evidence.models import DisclosureRequest, RegisterEntry
from tests.control_room.conftest import postgres  # noqa: F401 (fixture)
from tests.evidence.conftest import T0, UNIT
from tests.evidence.flow import record_request, request_id, staff


@pytest.fixture
def settings(settings, postgres):  # noqa: F811 (the conftest's settings on a fresh PostgreSQL database)
    return settings.model_copy(update={"database_url": postgres.create_database()})


def test_requests_and_register_on_postgresql(app, factory) -> None:
    assert get_engine(app).dialect.name == "postgresql"
    factory.unit(UNIT, "herts")
    admin = staff(app, factory)
    assert record_request(admin, T0 + timedelta(minutes=5), T0).status_code == 400
    rid = request_id(record_request(admin, T0, T0 + timedelta(minutes=5)))
    assert (
        admin.post(f"/evidence/{rid}/decide", decision="refuse", note="no named incident").status_code == 302
    )
    with session_scope(get_engine(app)) as s:
        assert s.scalar(select(func.count()).select_from(DisclosureRequest)) == 1
    table = list(
        csv.reader(
            io.StringIO(
                admin.client.get("/evidence/register?format=csv&force=hertford").get_data(as_text=True)
            )
        )
    )
    assert [(r[5], r[6]) for r in table[1:]] == [("refused", "ok"), ("request_recorded", "ok")]
    with pytest.raises(DBAPIError, match="append-only"), session_scope(get_engine(app)) as s:
        s.execute(text("UPDATE disclosure_register SET outcome = 'ok'"))
    with pytest.raises(DBAPIError, match="append-only"), session_scope(get_engine(app)) as s:
        s.execute(text("DELETE FROM disclosure_register"))
    with session_scope(get_engine(app)) as s:
        assert s.scalar(select(func.count()).select_from(RegisterEntry)) == 2
