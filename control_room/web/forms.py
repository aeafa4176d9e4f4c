"""Reading the fields of the pages' forms: plain text, numbers, dates and UK local times, each checked.

A field that cannot be accepted raises FormError naming it; the view answers 400 and stores nothing.
"""

from __future__ import annotations

from datetime import date, datetime

from flask import request

from control_room.errors import FormError
from control_room.web import common

__all__ = ["FormError", "day", "local_datetime", "number", "text"]


def text(field: str, limit: int, required: bool = True) -> str:
    value = request.form.get(field, "").strip()
    if required and not value:
        raise FormError(f"{field.replace('_', ' ')} is required")
    if len(value) > limit or any(ord(c) < 32 and c not in "\r\n\t" for c in value):
        raise FormError(f"{field.replace('_', ' ')} must be plain text of at most {limit} characters")
    return value


def number(field: str, lo: float, hi: float) -> float:
    try:
        value = float(request.form.get(field, ""))
    except ValueError:
        raise FormError(f"{field} must be a number") from None
    if not lo <= value <= hi:
        raise FormError(f"{field} must be between {lo} and {hi}")
    return value


def day(field: str, required: bool = True) -> date | None:
    raw = request.form.get(field, "").strip()
    if not raw:
        if required:
            raise FormError(f"{field.replace('_', ' ')} is required")
        return None
    try:
        return date.fromisoformat(raw)
    except ValueError:
        raise FormError(f"{field.replace('_', ' ')} must be a date (YYYY-MM-DD)") from None


def local_datetime(field: str, required: bool = True) -> datetime | None:
    """A datetime-local value read as UK local time (GMT or BST), returned in UTC; ISO with offset too."""
    raw = request.form.get(field, "").strip()
    if not raw:
        if required:
            raise FormError(f"{field.replace('_', ' ')} is required")
        return None
    try:
        value = datetime.fromisoformat(raw)
    except ValueError:
        raise FormError(f"{field.replace('_', ' ')} must be a date and time") from None
    utc = common.to_utc(value)
    if utc is None:
        raise FormError(f"{field.replace('_', ' ')} must be between 1970 and 2100")
    return utc
