"""The operators' workflow on events (Flask test client, SQLite, real S3 for the thumbnails).

The spec: an event is new, then acknowledged, reviewed or reopened, and annotated, each step with who
and when in the event's history and the audit log; the list filters by review state; the feed sends
only what changed (new rows, and rows whose state changed) with the count of new events; a wrong
step is refused and stores nothing; the event page links its neighbours; thumbnails are audited.
"""

from __future__ import annotations

import re

import pytest
from sqlalchemy import select

from control_room.db import session_scope
from control_room.models import AuditLog, Event, EventAction, ReviewState
from tests.control_room.web_fixtures import event_body, footage_key, login, make_world, s3_settings


@pytest.fixture
def database_url(sqlite_url: str) -> str:
    return sqlite_url


@pytest.fixture
def settings(tmp_path, database_url, s3_endpoint):  # noqa: ANN001, ANN201
    return s3_settings(tmp_path, database_url, s3_endpoint)


@pytest.fixture
def world(app, factory, s3_endpoint, clip_file, snapshot_file):  # noqa: ANN001, ANN201
    return make_world(app, factory, s3_endpoint, clip_file, snapshot_file)


def act(client, token: str, pk: int, action: str, note: str = "", back: str = ""):  # noqa: ANN001, ANN201
    return client.post(f"/events/{pk}/review", data={"csrf_token": token, "action": action, "note": note,
                                                     "back": back})


def state_of(engine, pk: int) -> tuple[ReviewState, str]:  # noqa: ANN001
    with session_scope(engine) as s:
        event = s.get(Event, pk)
        return event.review_state, event.review_by


def test_acknowledge_annotate_review_reopen_each_audited(app, world, engine, clock) -> None:  # noqa: ANN001
    alice = app.test_client()
    token = login(alice, "alice")
    pk = world.herts_event
    assert state_of(engine, pk) == (ReviewState.NEW, "")
    assert act(alice, token, pk, "acknowledge").status_code == 303
    assert state_of(engine, pk) == (ReviewState.ACKNOWLEDGED, "alice")
    clock.advance(60)
    assert act(alice, token, pk, "note", "Van seen leaving; <b>not</b> the owner's").status_code == 303
    assert act(alice, token, pk, "review", "Passed to enforcement, case 4411").status_code == 303
    assert state_of(engine, pk) == (ReviewState.REVIEWED, "alice")
    page = alice.get(f"/events/{pk}").get_data(as_text=True)
    assert "Van seen leaving; &lt;b&gt;not&lt;/b&gt; the owner&#39;s" in page
    assert 'id="review-state">reviewed<' in page and 'id="reopen"' in page
    assert act(alice, token, pk, "reopen").status_code == 303
    assert state_of(engine, pk)[0] == ReviewState.NEW
    with session_scope(engine) as s:
        event_id = s.get(Event, pk).event_id
        steps = [(a.username, a.action) for a in s.scalars(select(EventAction).order_by(EventAction.id))]
        audited = s.scalars(select(AuditLog).where(AuditLog.item_id == event_id,
                                                   AuditLog.action.like("event\\_%", escape="\\"))).all()
    assert steps == [("alice", "acknowledge"), ("alice", "note"), ("alice", "review"), ("alice", "reopen")]
    by_action = {r.action: r for r in audited}
    assert {"event_acknowledge", "event_note", "event_review", "event_reopen", "event_view"} <= set(by_action)
    assert by_action["event_note"].detail["note"].startswith("Van seen leaving")
    assert by_action["event_review"].detail["state"] == "reviewed"


@pytest.mark.parametrize(
    ("first", "action", "note", "status", "message"),
    [
        (None, "note", "   ", 400, "the note is empty"),
        (None, "delete", "", 400, "unknown action"),
        (None, "note", "x" * 2001, 400, "longer than 2000"),
        (None, "note", "evil \u202e text", 400, "plain text"),
        ("acknowledge", "acknowledge", "", 409, "already acknowledged by alice"),
        (None, "reopen", "", 409, "already new"),
    ],
)
def test_a_wrong_step_is_refused_and_nothing_stored(app, world, engine, first, action, note, status,  # noqa: ANN001
                                                    message) -> None:
    alice = app.test_client()
    token = login(alice, "alice")
    if first:
        assert act(alice, token, world.herts_event, first).status_code == 303
    with session_scope(engine) as s:
        before = (s.scalar(select(EventAction.id).order_by(EventAction.id.desc()).limit(1)),
                  s.scalar(select(AuditLog.id).order_by(AuditLog.id.desc()).limit(1)))
    answer = act(alice, token, world.herts_event, action, note)
    assert answer.status_code == status and message in answer.get_data(as_text=True)
    with session_scope(engine) as s:
        after = (s.scalar(select(EventAction.id).order_by(EventAction.id.desc()).limit(1)),
                 s.scalar(select(AuditLog.id).order_by(AuditLog.id.desc()).limit(1)))
    assert after == before


def test_other_councils_event_is_404_and_engineers_may_not_review(app, world, engine) -> None:  # noqa: ANN001
    bob = app.test_client()
    token = login(bob, "bob")
    assert act(bob, token, world.herts_event, "acknowledge").status_code == 404
    ed = app.test_client()
    token = login(ed, "ed")
    assert act(ed, token, world.herts_event, "acknowledge").status_code == 403
    assert state_of(engine, world.herts_event)[0] == ReviewState.NEW


def test_list_filters_by_review_state(app, world, factory, s3_endpoint) -> None:  # noqa: ANN001
    pat = app.test_client()
    token = login(pat, "pat")
    assert act(pat, token, world.herts_event, "acknowledge", back="list").headers["Location"] == "/events"
    page = pat.get("/events?review=acknowledged").get_data(as_text=True)
    assert f'id="event-{world.herts_event}"' in page and f'id="event-{world.beds_event}"' not in page
    page = pat.get("/events?review=new").get_data(as_text=True)
    assert f'id="event-{world.herts_event}"' not in page and f'id="event-{world.beds_event}"' in page
    open_page = pat.get("/events?review=open").get_data(as_text=True)
    assert f'id="event-{world.herts_event}"' in open_page and f'id="event-{world.beds_event}"' in open_page
    assert f'id="event-{world.herts_event}"' not in pat.get("/events?review=reviewed").get_data(as_text=True)


def test_feed_sends_only_new_and_changed_rows(app, world, factory, clock) -> None:  # noqa: ANN001
    alice = app.test_client()
    login(alice, "alice")
    clock.advance(5)  # past the feed's 1 s overlap with the event's arrival
    page = alice.get("/events").get_data(as_text=True)
    cursor = {name: re.search(rf'data-{name}="([^"]*)"', page).group(1)
              for name in ("latest-id", "actions", "t")}
    assert re.search(r'id="unreviewed" data-count="1"', page)

    def poll() -> dict:
        answer = alice.get("/events/feed", query_string={"after": cursor["latest-id"],
                                                          "actions": cursor["actions"], "t": cursor["t"]})
        data = answer.get_json()
        cursor.update({"latest-id": data["latest_id"], "actions": data["actions"], "t": data["t"]})
        return data

    clock.advance(10)
    quiet = poll()
    assert (quiet["count"], quiet["changed"], quiet["unreviewed"]) == (0, {}, 1)
    # another operator acknowledges the event: only that row comes back, in its new state
    olga = app.test_client()
    assert act(olga, login(olga, "olga"), world.herts_event, "acknowledge").status_code == 303
    clock.advance(5)
    changed = poll()
    assert list(changed["changed"]) == [str(world.herts_event)] and changed["html"] == ""
    assert 'data-review="acknowledged"' in changed["changed"][str(world.herts_event)]
    assert changed["unreviewed"] == 0
    clock.advance(5)
    assert poll()["changed"] == {}
    # a new event from the unit arrives as a new row, counted as new
    unit = factory.unit("herts-mcu-002", "herts")
    body = event_body(unit.unit_id, "20261118T103000.000Z", {}, state="snapshot_uploaded")
    assert app.test_client().post(f"/api/v1/units/{unit.unit_id}/events", json=body,
                                  headers=unit.auth).status_code == 200
    clock.advance(5)
    fresh = poll()
    assert fresh["count"] == 1 and body["event_id"] in fresh["html"] and fresh["unreviewed"] == 1
    # the unit then announces the clip: the listed row changes in place
    clock.advance(5)
    assert poll()["changed"] == {}
    body["state"] = "clip_uploaded"
    body["objects"] = {name: {"key": footage_key(unit.unit_id, "20261118T103000.000Z", name), "size": 1000,
                              "sha256": "ab" * 32} for name in ("snapshot", "clip")}
    assert app.test_client().post(f"/api/v1/units/{unit.unit_id}/events", json=body,
                                  headers=unit.auth).status_code == 200
    clock.advance(5)
    clip = poll()
    assert clip["count"] == 0 and len(clip["changed"]) == 1
    assert "badge ok\">clip<" in next(iter(clip["changed"].values()))


def test_event_page_links_previous_and_next(app, world) -> None:  # noqa: ANN001
    pat = app.test_client()
    login(pat, "pat")
    first = pat.get(f"/events/{world.herts_event}").get_data(as_text=True)
    assert 'id="event-previous"' not in first
    assert 'id="event-next" rel="next"' not in first or f"/events/{world.beds_event}" in first
    second = pat.get(f"/events/{world.beds_event}").get_data(as_text=True)
    assert f'href="/events/{world.herts_event}" id="event-previous"' in second
    alice = app.test_client()
    login(alice, "alice")  # beds' event is not alice's: no link to it
    assert 'id="event-next"' not in alice.get(f"/events/{world.herts_event}").get_data(as_text=True)


def test_thumbnail_is_the_snapshot_audited_and_cached_briefly(app, world, engine) -> None:  # noqa: ANN001
    alice = app.test_client()
    login(alice, "alice")
    page = alice.get("/events").get_data(as_text=True)
    assert f'src="/events/{world.herts_event}/thumb"' in page
    answer = alice.get(f"/events/{world.herts_event}/thumb")
    assert answer.status_code == 200 and answer.mimetype == "image/jpeg"
    assert answer.headers["Cache-Control"] == "private, max-age=3600"
    assert len(answer.data) == world.snapshot.size
    with session_scope(engine) as s:
        rows = s.scalars(select(AuditLog).where(AuditLog.action == "thumbnail_view")).all()
    assert [(r.username, r.detail["key"]) for r in rows] == [("alice", world.snapshot.key)]
    assert alice.get(f"/events/{world.beds_event}/thumb").status_code == 404
