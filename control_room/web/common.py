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
from werkzeug.routing import IntegerConverter

from control_room import clock
from control_room.db import get_session
from control_room.fleet import human_distance
from control_room.web.cells import human_age, human_bytes

LONDON = ZoneInfo("Europe/London")
DB_INT_MAX = 2**63 - 1  # what a database integer holds; a larger one in a query is an OverflowError
EARLIEST, LATEST = datetime(1970, 1, 1, tzinfo=UTC), datetime(2100, 1, 1, tzinfo=UTC)


def db_int(text: str) -> int:
    """`type=` for request.args/form ids and counts: ValueError (the default is used) if out of range."""
    value = int(text)
    if not -DB_INT_MAX <= value <= DB_INT_MAX:
        raise ValueError(f"{text[:20]}... does not fit a database integer")
    return value


class DbIntConverter(IntegerConverter):
    """`<int:...>` in routes: a number a database id can be, else the route does not match (404)."""

    def __init__(self, map: Any, *args: Any, **kwargs: Any) -> None:  # noqa: A002 (werkzeug's name)
        kwargs.setdefault("max", DB_INT_MAX)
        super().__init__(map, *args, **kwargs)


def to_utc(value: datetime) -> datetime | None:
    """A time from a form or query (naive = UK local) in UTC; None outside 1970-2100 (or overflowing)."""
    try:
        utc = (value if value.tzinfo else value.replace(tzinfo=LONDON)).astimezone(UTC)
    except OverflowError:
        return None
    return utc if EARLIEST <= utc < LATEST else None


def db() -> Session:
    return get_session()


def settings() -> Any:
    return current_app.config["SETTINGS"]


def now() -> datetime:
    return clock.now()


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


def ago(value: datetime | None, at: datetime) -> str:
    """How long before `at` (the page's now) a time was: "40 s ago", "3 min ago"; pages keep it current."""
    if value is None:
        return "-"
    return f"{human_age((at - value).total_seconds())} ago"


def distance(metres: float | None) -> str:
    """A distance people read at a glance: "35 m", "850 m", "30.3 km"."""
    return "-" if metres is None else human_distance(metres)


def iso(value: datetime | None) -> str:
    return value.isoformat() if value is not None else ""


def local_input(value: datetime | None) -> str:
    """A UTC time as a datetime-local form value (UK local time, to the minute)."""
    return value.astimezone(LONDON).strftime("%Y-%m-%dT%H:%M") if value is not None else ""


FILTERS = {"local_time": local_time, "bytes": human_bytes, "age": human_age, "ago": ago, "distance": distance,
           "iso": iso, "local_input": local_input}


def _error_page(exc: HTTPException) -> tuple[str, int]:
    return render_template("error.html", error=exc), exc.code or 500


def add_error_pages(blueprint: Blueprint) -> None:
    for code in (400, 401, 403, 404, 405, 409, 413, 429):
        blueprint.register_error_handler(code, _error_page)
