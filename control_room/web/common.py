"""Helpers shared by the web blueprints: the request's database session, settings, time, filters, errors.

Time is read through `now()`: the app's clock (create_app(clock=...)), so tests can drive it.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from flask import Blueprint, current_app, render_template
from sqlalchemy.orm import Session
from werkzeug.exceptions import HTTPException

from control_room.db import get_session
from control_room.web.cells import human_age, human_bytes

LONDON = ZoneInfo("Europe/London")


def db() -> Session:
    return get_session()


def settings() -> Any:
    return current_app.config["SETTINGS"]


def now() -> datetime:
    clock = current_app.extensions.get("cctv_clock")
    return clock.now() if clock is not None else datetime.now(UTC)


def gps_far_m() -> float:
    return float(settings().gps_far_m)


def poll_ms() -> int:
    return int(1000 * settings().web_poll_s)


def local_time(value: datetime | date | None, with_seconds: bool = True) -> str:
    """UTC inside, UK local time (GMT or BST, named) on the page."""
    if value is None:
        return "-"
    if not isinstance(value, datetime):
        return value.isoformat()
    local = value.astimezone(LONDON)
    return local.strftime("%Y-%m-%d %H:%M:%S %Z" if with_seconds else "%Y-%m-%d %H:%M %Z")


FILTERS = {"local_time": local_time, "bytes": human_bytes, "age": human_age}


def _error_page(exc: HTTPException) -> tuple[str, int]:
    return render_template("error.html", error=exc), exc.code or 500


def add_error_pages(blueprint: Blueprint) -> None:
    for code in (400, 401, 403, 404, 405, 409, 413, 429):
        blueprint.register_error_handler(code, _error_page)
