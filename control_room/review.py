"""The operators' workflow on an event: acknowledge it, mark it reviewed, reopen it, add notes.

Called by the event page (control_room.web.review); each step is an EventAction row (who, when,
note) plus an audit row in the caller's transaction, and moves the event's denormalised review state.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.orm import Session

from control_room import audit
from control_room.errors import ControlRoomError
from control_room.models import Event, EventAction, ReviewState, User

NOTE_LIMIT = 2000


class ReviewError(ControlRoomError, ValueError):
    """A workflow step that cannot be taken (wrong state, empty or bad note); the message says why."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class Step:
    """What an action does: the states it may start from and the state it leaves (None = unchanged)."""

    from_states: frozenset[ReviewState]
    to_state: ReviewState | None
    needs_note: bool = False


ANY = frozenset(ReviewState)
STEPS: dict[str, Step] = {
    "acknowledge": Step(frozenset({ReviewState.NEW}), ReviewState.ACKNOWLEDGED),
    "review": Step(frozenset({ReviewState.NEW, ReviewState.ACKNOWLEDGED}), ReviewState.REVIEWED),
    "reopen": Step(frozenset({ReviewState.ACKNOWLEDGED, ReviewState.REVIEWED}), ReviewState.NEW),
    "note": Step(ANY, None, needs_note=True),
}


def clean_note(text: str) -> str:
    """A note as stored: stripped plain text (newlines allowed), at most NOTE_LIMIT characters."""
    text = text.strip().replace("\r\n", "\n")
    if len(text) > NOTE_LIMIT:
        raise ReviewError(f"note is longer than {NOTE_LIMIT} characters")
    if any((ord(c) < 32 and c not in "\n\t") or 0x7F <= ord(c) < 0xA0 or 0x202A <= ord(c) <= 0x202E
           or 0x2066 <= ord(c) <= 0x2069 for c in text):
        raise ReviewError("note must be plain text (no control or text-direction characters)")
    return text


def act(db: Session, event: Event, user: User, action: str, note: str, now: datetime) -> EventAction:
    """Take one workflow step on the event as `user`; the caller commits (or rolls back on error)."""
    step = STEPS.get(action)
    if step is None:
        raise ReviewError(f"unknown action {action[:32]!r}: one of {', '.join(STEPS)}")
    note = clean_note(note)
    if step.needs_note and not note:
        raise ReviewError("the note is empty")
    if event.review_state not in step.from_states:
        who = f" by {event.review_by}" if event.review_by else ""
        raise ReviewError(f"this event is already {event.review_state.value}{who}", status=409)
    if step.to_state is not None:
        event.review_state = step.to_state
        event.review_by = user.username
        event.review_at = now
    row = EventAction(event_pk=event.id, at=now, user_id=user.id, username=user.username, action=action,
                      note=note)
    db.add(row)
    db.flush()
    detail: dict[str, object] = {"event_pk": event.id, "state": event.review_state.value}
    if note:
        detail["note"] = note[:500]
    audit.record(db, user, f"event_{action}", "event", event.event_id, detail, at=now)
    return row
