"""The event review form: acknowledge, mark reviewed, reopen or annotate an event (control_room.review).

Posted from the event page and from the events list's rows; answers with a redirect back (and a
message), or 400/409 naming the problem with nothing stored.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, abort, flash, g, redirect, request, url_for

from control_room import review, scope
from control_room.auth import require
from control_room.models import Event
from control_room.web import common

bp = Blueprint("review", __name__)

DONE = {"acknowledge": "acknowledged", "review": "marked reviewed", "reopen": "reopened", "note": "annotated"}


@bp.route("/events/<int:event_id>/review", methods=["POST"])
@require("footage")
def act(event_id: int) -> Any:
    db = common.db()
    event = scope.get_or_404(db, Event, g.user, id=event_id)
    action = request.form.get("action", "")
    back = (url_for("events.index") if request.form.get("back") == "list"
            else url_for("events.page", event_id=event.id))
    try:
        review.act(db, event, g.user, action, request.form.get("note", ""), common.now())
    except review.ReviewError as exc:
        db.rollback()
        abort(exc.status, description=f"Not saved: {exc}.")
    db.commit()
    flash(f"Event {event.event_id} {DONE[action]}.", "info")
    return redirect(back, 303)
