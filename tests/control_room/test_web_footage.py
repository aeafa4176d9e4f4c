"""Footage through the control room: event page, Range streaming from a real S3 server, SHA-256 state,
and an audit row for every view and download (Flask test client, SQLite, moto S3 over HTTP).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from sqlalchemy import select, text
from sqlalchemy.exc import DatabaseError

from control_room.config import Settings
from control_room.db import session_scope
from control_room.models import AuditLog, Instruction
from tests.control_room.web_fixtures import (
    BUCKET,
    World,
    csrf_from,
    login,
    make_world,
    s3_client,
    s3_settings,
)


@pytest.fixture
def database_url(sqlite_url: str) -> str:
    return sqlite_url


@pytest.fixture
def settings(tmp_path: Path, database_url: str, s3_endpoint: str) -> Settings:
    return s3_settings(tmp_path, database_url, s3_endpoint)


@pytest.fixture
def world(app, factory, s3_endpoint, clip_file, snapshot_file) -> World:  # noqa: ANN001
    return make_world(app, factory, s3_endpoint, clip_file, snapshot_file)


@pytest.fixture
def alice(app, world):  # noqa: ANN001, ANN201
    client = app.test_client()
    login(client, "alice")
    return client


def audit_rows(engine, action: str | None = None) -> list[AuditLog]:  # noqa: ANN001
    with session_scope(engine) as s:
        stmt = select(AuditLog).where(AuditLog.item_type == "event").order_by(AuditLog.id)
        if action:
            stmt = stmt.where(AuditLog.action == action)
        return list(s.scalars(stmt))


def test_event_page_shows_player_snapshot_and_verified_hashes(alice, world: World, engine) -> None:  # noqa: ANN001
    page = alice.get(f"/events/{world.herts_event}")
    html = page.get_data(as_text=True)
    assert page.status_code == 200
    assert f'src="/events/{world.herts_event}/clip"' in html and "<video" in html
    assert f'src="/events/{world.herts_event}/snapshot"' in html
    assert 'data-object="clip" data-state="verified"' in html
    assert 'data-object="snapshot" data-state="verified"' in html
    [row] = audit_rows(engine, "event_view")
    assert row.username == "alice" and row.item_id == "herts-mcu-001-20261118T101500.000Z"
    assert row.at is not None


def test_clip_range_requests_return_exact_bytes(alice, world: World, clip_file: Path, engine) -> None:  # noqa: ANN001
    data = clip_file.read_bytes()
    part = alice.get(f"/events/{world.herts_event}/clip", headers={"Range": "bytes=100-1099"})
    assert part.status_code == 206
    assert part.headers["Content-Range"] == f"bytes 100-1099/{len(data)}"
    assert part.headers["Accept-Ranges"] == "bytes" and part.mimetype == "video/mp4"
    assert part.data == data[100:1100]
    tail = alice.get(f"/events/{world.herts_event}/clip", headers={"Range": f"bytes={len(data) - 10}-"})
    assert tail.status_code == 206 and tail.data == data[-10:]
    whole = alice.get(f"/events/{world.herts_event}/clip")
    assert whole.status_code == 200 and whole.data == data
    rows = audit_rows(engine, "clip_view")
    assert [r.detail["range"] for r in rows] == ["bytes=100-1099", f"bytes={len(data) - 10}-", None]
    assert {r.username for r in rows} == {"alice"}


def test_unsatisfiable_range_is_416(alice, world: World, clip_file: Path) -> None:  # noqa: ANN001
    size = clip_file.stat().st_size
    answer = alice.get(f"/events/{world.herts_event}/clip", headers={"Range": f"bytes={size + 10}-"})
    assert answer.status_code == 416


def test_download_is_an_attachment_and_audited(alice, world: World, engine) -> None:  # noqa: ANN001
    answer = alice.get(f"/events/{world.herts_event}/clip?download=1")
    assert answer.status_code == 200 and answer.data == alice.get(f"/events/{world.herts_event}/clip").data
    assert answer.headers["Content-Disposition"] == 'attachment; filename="clip.mp4"'
    assert [r.username for r in audit_rows(engine, "clip_download")] == ["alice"]


def test_snapshot_is_a_jpeg_and_audited(alice, world: World, snapshot_file: Path, engine) -> None:  # noqa: ANN001
    answer = alice.get(f"/events/{world.herts_event}/snapshot")
    assert answer.status_code == 200 and answer.mimetype == "image/jpeg"
    assert answer.data == snapshot_file.read_bytes() and answer.data[:2] == b"\xff\xd8"
    assert len(audit_rows(engine, "snapshot_view")) == 1


def test_tampered_and_missing_objects_are_flagged(alice, world: World, s3_endpoint: str) -> None:  # noqa: ANN001
    s3 = s3_client(s3_endpoint)
    key = world.clip.key
    s3.put_object(Bucket=BUCKET, Key=key, Body=b"not the clip" * 100)  # replaced, no checksum
    s3.delete_object(Bucket=BUCKET, Key=world.snapshot.key)
    html = alice.get(f"/events/{world.herts_event}").get_data(as_text=True)
    assert 'data-object="clip" data-state="mismatch"' in html
    assert 'data-object="snapshot" data-state="missing"' in html
    assert alice.get(f"/events/{world.herts_event}/snapshot").status_code == 404


def test_verify_by_reading_hashes_the_objects(alice, world: World, engine, s3_endpoint: str) -> None:  # noqa: ANN001
    page = alice.get(f"/events/{world.herts_event}").get_data(as_text=True)
    answer = alice.post(f"/events/{world.herts_event}/verify", data={"csrf_token": csrf_from(page)})
    assert answer.status_code == 302
    flashed = alice.get(f"/events/{world.herts_event}").get_data(as_text=True)
    assert "clip: SHA-256 verified by reading the whole object" in flashed
    s3_client(s3_endpoint).put_object(Bucket=BUCKET, Key=world.clip.key, Body=b"x" * world.clip.size)
    alice.post(f"/events/{world.herts_event}/verify", data={"csrf_token": csrf_from(page)})
    assert "clip: content SHA-256" in alice.get(f"/events/{world.herts_event}").get_data(as_text=True)
    results = [
        r.detail["result"] for r in audit_rows(engine, "footage_verify") if r.detail["key"] == world.clip.key
    ]
    assert results == ["verified", "mismatch"]


def test_audit_rows_cannot_be_changed(alice, world: World, engine) -> None:  # noqa: ANN001
    alice.get(f"/events/{world.herts_event}")
    with pytest.raises(DatabaseError), engine.begin() as conn:
        conn.execute(text("UPDATE audit_log SET username = 'mallory'"))
    with pytest.raises(DatabaseError), engine.begin() as conn:
        conn.execute(text("DELETE FROM audit_log"))
    assert audit_rows(engine, "event_view")[0].username == "alice"


def test_metadata_only_hash_is_shown_as_weaker(
    alice, world: World, s3_endpoint: str, clip_file: Path
) -> None:  # noqa: ANN001
    """A multipart upload has no whole-object checksum in S3: only the uploader's metadata matches."""
    s3 = s3_client(s3_endpoint)
    s3.put_object(
        Bucket=BUCKET, Key=world.clip.key, Body=clip_file.read_bytes(), Metadata={"sha256": world.clip.sha256}
    )
    html = alice.get(f"/events/{world.herts_event}").get_data(as_text=True)
    assert 'data-object="clip" data-state="metadata"' in html


def test_events_filter_by_unit_and_time(app, world: World) -> None:  # noqa: ANN001
    pat = app.test_client()
    login(pat, "pat")
    both = pat.get("/events").get_data(as_text=True)
    assert f'id="event-{world.herts_event}"' in both and f'id="event-{world.beds_event}"' in both
    one = pat.get(f"/events?unit={world.beds_unit}").get_data(as_text=True)
    assert f'id="event-{world.herts_event}"' not in one and f'id="event-{world.beds_event}"' in one
    # herts event at 10:15 UTC, beds at 10:16 UTC; in November UK time is GMT (= UTC)
    late = pat.get("/events?since=2026-11-18T10:15:30").get_data(as_text=True)
    assert f'id="event-{world.herts_event}"' not in late and f'id="event-{world.beds_event}"' in late
    early = pat.get("/events?until=2026-11-18T10:15:30").get_data(as_text=True)
    assert f'id="event-{world.herts_event}"' in early and f'id="event-{world.beds_event}"' not in early
    bad = pat.get("/events?since=yesterday")
    assert bad.status_code == 200 and "Ignored a time" in bad.get_data(as_text=True)


def test_unreachable_bucket_is_reported_not_a_crash(app, alice, world: World) -> None:  # noqa: ANN001
    import socket

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{s.getsockname()[1]}"
    app.extensions["cctv_s3"] = s3_client(dead)
    page = alice.get(f"/events/{world.herts_event}")
    assert page.status_code == 200
    assert 'data-object="clip" data-state="error"' in page.get_data(as_text=True)
    clip = alice.get(f"/events/{world.herts_event}/clip")
    assert clip.status_code == 502 and b"bucket unreachable" in clip.data


def test_event_page_asks_for_the_footage_around_the_event(app, alice, world: World, engine) -> None:  # noqa: ANN001
    html = alice.get(f"/events/{world.herts_event}").get_data(as_text=True)
    start = re.search(r'name="start" value="([^"]+)"', html).group(1)
    end = re.search(r'name="end" value="([^"]+)"', html).group(1)
    assert (start, end) == ("2026-11-18T10:14:00+00:00", "2026-11-18T10:16:00+00:00")
    form = {"csrf_token": csrf_from(html), "start": start, "end": end}
    assert alice.post(f"/units/{world.herts_unit}/request-upload", data=form).status_code == 303
    bob = app.test_client()
    bob_form = {**form, "csrf_token": login(bob, "bob")}
    assert bob.post(f"/units/{world.herts_unit}/request-upload", data=bob_form).status_code == 404
    with session_scope(engine) as s:
        [row] = s.scalars(select(Instruction)).all()
        assert row.params["start"] == "2026-11-18T10:14:00.000Z" and row.created_by_id is not None


def test_footage_is_read_only_from_the_control_rooms_bucket(  # noqa: ANN001
    app, alice, world: World, engine, s3_endpoint: str, clip_file: Path
) -> None:
    """A unit naming another bucket (its key still under its own prefix) gets nothing read from it."""
    from control_room.provision import rotate_token
    from tests.control_room.web_fixtures import event_body, footage_key, put_footage

    stamp = "20261118T102000.000Z"
    movie = put_footage(s3_endpoint, footage_key(world.herts_unit, stamp, "clip.mp4"), clip_file,
                        bucket="elsewhere-footage")
    body = event_body(world.herts_unit, stamp, {"clip": movie.as_protocol()})
    body["bucket"] = "elsewhere-footage"
    with session_scope(engine) as s:
        token = rotate_token(s, world.herts_unit)
    answer = app.test_client().post(f"/api/v1/units/{world.herts_unit}/events", json=body,
                                    headers={"Authorization": f"Bearer {token}"})
    assert answer.status_code == 200
    with session_scope(engine) as s:
        pk = s.scalar(text("SELECT id FROM events WHERE event_id = :e"), {"e": body["event_id"]})
    clip = alice.get(f"/events/{pk}/clip")
    assert clip.status_code == 404 and b"bucket" in clip.data
    page = alice.get(f"/events/{pk}").get_data(as_text=True)
    assert 'data-object="clip" data-state="error"' in page
    alice.post(f"/events/{pk}/verify", data={"csrf_token": csrf_from(page)})
    assert [r.detail["result"] for r in audit_rows(engine, "footage_verify")] == ["error"]


@pytest.mark.parametrize(("header", "to_s3"), [
    ("bytes=100-1099", "bytes=100-1099"), ("bytes=5-", "bytes=5-"), ("bytes=-500", "bytes=-500"),
    ("bytes=0-1,5-9", None), ("items=0-1", None), ("bytes=9-1", None), ("junk", None), (None, None),
])
def test_range_headers_are_read_by_werkzeug(header: str | None, to_s3: str | None) -> None:
    from control_room.web.footage import parse_range
    assert parse_range(header) == to_s3
