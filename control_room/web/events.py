"""Events: the list (filtered by council, unit, site, time and review state; new rows arrive and rows
change state without a reload) and the event page with its snapshot, playable clip, SHA-256
verification state, review workflow and previous/next links.

Every look at footage (event page, thumbnail, snapshot, clip bytes, download, verification) is audited.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from flask import Blueprint, abort, flash, g, jsonify, redirect, render_template, request, url_for
from sqlalchemy import Select, func, or_, select
from sqlalchemy.orm import selectinload

from control_room import audit, scope
from control_room.auth import require
from control_room.models import Event, EventAction, ReviewState, Site, Unit
from control_room.web import common, footage

bp = Blueprint("events", __name__)

PAGE_SIZE = 100
REVIEW_FILTERS = {
    "open": (ReviewState.NEW, ReviewState.ACKNOWLEDGED),
    "new": (ReviewState.NEW,),
    "acknowledged": (ReviewState.ACKNOWLEDGED,),
    "reviewed": (ReviewState.REVIEWED,),
}
CHANGE_OVERLAP = timedelta(seconds=1)  # a unit's update committed just after the last poll is not missed
THUMB_MAX_AGE_S = 3600


@dataclass
class Filters:
    council: int | None = None
    unit: str = ""
    site: int | None = None
    since: datetime | None = None
    until: datetime | None = None
    review: str = ""

    def args(self) -> dict[str, str]:
        """The filters as query arguments (for the feed URL and paging links)."""
        out = {
            "council": self.council,
            "unit": self.unit or None,
            "site": self.site,
            "review": self.review or None,
            "since": request.args.get("since") or None,
            "until": request.args.get("until") or None,
        }
        return {k: str(v) for k, v in out.items() if v is not None}


def _local_datetime(text: str | None, complain: bool) -> datetime | None:
    """A datetime-local form value, read as UK local time; bad input is ignored (with a message on pages)."""
    if not text:
        return None
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        if complain:
            flash(f"Ignored a time that is not a date and time: {text[:40]}", "error")
        return None
    utc = common.to_utc(value)
    if utc is None and complain:
        flash(f"Ignored a time outside 1970-2100: {text[:40]}", "error")
    return utc


def read_filters(complain: bool = False) -> Filters:
    return Filters(
        council=request.args.get("council", type=common.db_int),
        unit=request.args.get("unit", "")[:64],
        site=request.args.get("site", type=common.db_int),
        since=_local_datetime(request.args.get("since"), complain),
        until=_local_datetime(request.args.get("until"), complain),
        review=r if (r := request.args.get("review", "")) in REVIEW_FILTERS else "",
    )


def filtered(f: Filters) -> Select[Any]:
    stmt = scope.visible(common.db(), Event, g.user).options(
        selectinload(Event.unit), selectinload(Event.council), selectinload(Event.site_ref)
    )
    if f.council is not None:
        stmt = stmt.where(Event.council_id == f.council)
    if f.unit:
        stmt = stmt.join(Unit, Event.unit_pk == Unit.id).where(Unit.unit_id == f.unit)
    if f.site is not None:
        stmt = stmt.where(Event.site_id == f.site)
    if f.since is not None:
        stmt = stmt.where(Event.start >= f.since)
    if f.until is not None:
        stmt = stmt.where(Event.start <= f.until)
    if f.review:
        stmt = stmt.where(Event.review_state.in_(REVIEW_FILTERS[f.review]))
    return stmt


def _unreviewed(f: Filters) -> int:
    """How many events matching the filters nobody has acknowledged yet (the tab title shows it)."""
    stmt = filtered(f).where(Event.review_state == ReviewState.NEW).with_only_columns(func.count())
    return int(common.db().scalar(stmt.order_by(None)) or 0)


def _latest_action_id() -> int:
    return int(common.db().scalar(select(func.max(EventAction.id))) or 0)


@bp.route("/events")
@require("footage")
def index() -> str:
    f = read_filters(complain=True)
    before = request.args.get("before", type=common.db_int)
    stmt = filtered(f)
    if before is not None:
        stmt = stmt.where(Event.id < before)
    rows = list(common.db().scalars(stmt.order_by(Event.id.desc()).limit(PAGE_SIZE)))
    latest = (
        common.db().scalar(filtered(f).with_only_columns(Event.id).order_by(Event.id.desc()).limit(1)) or 0
    )
    db = common.db()
    now = common.now()
    units = db.scalars(scope.visible(db, Unit, g.user).order_by(Unit.unit_id)).all()
    sites = db.scalars(scope.visible(db, Site, g.user).order_by(Site.name)).all()
    return render_template(
        "events/index.html",
        rows=rows,
        filters=f,
        latest_id=latest,
        units=units,
        sites=sites,
        councils=scope.councils(db, g.user),
        poll_ms=common.poll_ms(),
        older=rows[-1].id if len(rows) == PAGE_SIZE else None,
        review_filters=REVIEW_FILTERS,
        unreviewed=_unreviewed(f),
        action_id=_latest_action_id(),
        cursor=now.isoformat(),
        now=now,
    )


def _since(text: str | None) -> datetime | None:
    try:
        value = datetime.fromisoformat(text or "")
    except ValueError:
        return None
    return common.to_utc(value)


@bp.route("/events/feed")
@require("footage")
def feed() -> Any:
    """What changed in the list since the last poll, and nothing else: events newer than `after`
    (rows to prepend), and rows of already-listed events whose review state changed (EventAction id
    above `actions`) or that their unit updated (clip arrived) since `since`, to replace in place.
    """
    f = read_filters()
    after = request.args.get("after", 0, type=common.db_int)
    seen_action = request.args.get("actions", 0, type=common.db_int)
    since = _since(request.args.get("t"))
    now = common.now()
    db = common.db()
    stmt = filtered(f).where(Event.id > after).order_by(Event.id.desc()).limit(PAGE_SIZE)
    rows = list(db.scalars(stmt))
    latest_action = _latest_action_id()
    changed_if = [Event.id.in_(select(EventAction.event_pk).where(EventAction.id > seen_action))]
    if since is not None:
        changed_if.append(Event.updated_at >= since - CHANGE_OVERLAP)
    changed: dict[str, str] = {}
    if latest_action > seen_action or since is not None:
        stmt = filtered(f).where(Event.id <= after, or_(*changed_if))
        stmt = stmt.order_by(Event.id.desc()).limit(PAGE_SIZE)
        for event in db.scalars(stmt):
            changed[str(event.id)] = render_template("events/_rows.html", rows=[event], now=now)
    html = render_template("events/_rows.html", rows=rows, new=True, now=now) if rows else ""
    return jsonify(latest_id=rows[0].id if rows else after, count=len(rows), html=html, changed=changed,
                   actions=latest_action, t=now.isoformat(), unreviewed=_unreviewed(f))


def around(event: Event, margin: timedelta = timedelta(minutes=1)) -> tuple[str, str]:
    """The event's time plus a margin either side, as ISO UTC for the footage request form."""
    start = (event.clip_start or event.start) - margin
    end = (event.clip_end or event.end or event.start) + margin
    return start.isoformat(), end.isoformat()


def motion_boxes(event: Event) -> list[tuple[float, float, float, float]]:
    """The event's normalised [x, y, w, h] boxes, clipped to the picture; malformed ones are left out."""
    out = []
    for box in event.boxes if isinstance(event.boxes, list) else []:
        if not isinstance(box, list | tuple) or len(box) != 4:
            continue
        if not all(isinstance(v, int | float) and not isinstance(v, bool) for v in box):
            continue
        x, y, w, h = (min(1.0, max(0.0, float(v))) for v in box)
        out.append((round(x, 4), round(y, 4), round(min(w, 1 - x), 4), round(min(h, 1 - y), 4)))
    return out


def _event(event_id: int) -> Event:
    return scope.get_or_404(common.db(), Event, g.user, id=event_id)


@bp.route("/events/<int:event_id>")
@require("footage")
def page(event_id: int) -> str:
    event = _event(event_id)
    objects = footage.stored_objects(event.objects)
    checks = {name: footage.verify(event.bucket, obj) for name, obj in objects.items()}
    db = common.db()
    audit.record(db, g.user, "event_view", "event", event.event_id, {"event_pk": event.id})
    db.commit()
    history = db.scalars(
        select(EventAction).where(EventAction.event_pk == event.id).order_by(EventAction.id.desc())
    ).all()
    return render_template(
        "events/page.html",
        event=event,
        objects=objects,
        checks=checks,
        around=around(event),
        boxes=motion_boxes(event),
        history=history,
        neighbours=_neighbours(event),
        now=common.now(),
    )


def _neighbours(event: Event) -> dict[str, int | None]:
    """The ids of the previous (older) and next (newer) event this user may see."""
    ids = scope.visible(common.db(), Event, g.user).with_only_columns(Event.id)
    return {
        "previous": common.db().scalar(ids.where(Event.id < event.id).order_by(Event.id.desc()).limit(1)),
        "next": common.db().scalar(ids.where(Event.id > event.id).order_by(Event.id).limit(1)),
    }


def _object_or_404(event: Event, name: str) -> footage.StoredObject:
    obj = footage.stored_objects(event.objects).get(name)
    if obj is None:
        abort(404, description=f"this event has no {name} in the bucket yet")
    return obj


@bp.route("/events/<int:event_id>/<any(snapshot, clip):name>")
@require("footage")
def media(event_id: int, name: str) -> Any:
    """Snapshot or clip bytes, streamed from S3 with HTTP Range support (video seeking needs it)."""
    event = _event(event_id)
    obj = _object_or_404(event, name)
    download = request.args.get("download") == "1"
    action = f"{name}_{'download' if download else 'view'}"
    db = common.db()
    audit.record(
        db,
        g.user,
        action,
        "event",
        event.event_id,
        {"event_pk": event.id, "key": obj.key, "range": request.headers.get("Range")},
    )
    db.commit()
    return footage.stream(event.bucket, obj, request.headers.get("Range"), download=download)


@bp.route("/events/<int:event_id>/thumb")
@require("footage")
def thumb(event_id: int) -> Any:
    """The snapshot for the list's thumbnail (audited as a thumbnail view; the browser keeps it an hour)."""
    event = _event(event_id)
    obj = _object_or_404(event, "snapshot")
    db = common.db()
    detail = {"event_pk": event.id, "key": obj.key}
    audit.record(db, g.user, "thumbnail_view", "event", event.event_id, detail)
    db.commit()
    answer = footage.stream(event.bucket, obj, None)
    if answer.status_code == 200:
        answer.headers["Cache-Control"] = f"private, max-age={THUMB_MAX_AGE_S}"
    return answer


@bp.route("/events/<int:event_id>/verify", methods=["POST"])
@require("footage")
def verify(event_id: int) -> Any:
    """Hash every object of the event by reading it back from the bucket."""
    event = _event(event_id)
    db = common.db()
    results = []
    for name, obj in footage.stored_objects(event.objects).items():
        check = footage.verify_by_reading(event.bucket, obj)
        results.append(f"{name}: {check.text}")
        audit.record(
            db,
            g.user,
            "footage_verify",
            "event",
            event.event_id,
            {"event_pk": event.id, "key": obj.key, "result": check.state},
        )
    db.commit()
    flash("; ".join(results) or "nothing to verify", "info")
    return redirect(url_for("events.page", event_id=event.id))
