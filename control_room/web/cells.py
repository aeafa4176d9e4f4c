"""How each part of a unit's last heartbeat reads in the fleet table and on the unit page.

Pure formatting: a heartbeat `last_state` JSON and `now` in, one short text and a level (ok, warn,
bad, muted) per column out. Online/offline and the attention badges come from control_room.fleet.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from protocol.times import parse_aware

COLUMNS = ("camera", "recording", "disk", "uploads", "data", "clock", "signal")


@dataclass(frozen=True)
class Cell:
    """One column of the fleet table: the text and how it looks (ok, warn, bad, muted)."""

    text: str
    level: str = "ok"


UNKNOWN = Cell("?", "muted")


def _parse_time(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        return parse_aware(value)
    except ValueError:
        return None


def _section(state: dict[str, Any], name: str) -> dict[str, Any]:
    value = state.get(name)
    return value if isinstance(value, dict) else {}


def _num(section: dict[str, Any], key: str) -> float | None:
    value = section.get(key)
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def human_bytes(n: float | None) -> str:
    if n is None:
        return "?"
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if abs(n) < 1024 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TB"


def human_age(seconds: float | None) -> str:
    if seconds is None:
        return "never"
    seconds = max(0.0, seconds)
    for size, name in ((86400, "d"), (3600, "h"), (60, "min")):
        if seconds >= size:
            return f"{seconds / size:.0f} {name}"
    return f"{seconds:.0f} s"


def camera(state: dict[str, Any], now: datetime) -> Cell:
    cam = _section(state, "camera")
    value = cam.get("state")
    if value is None:
        return UNKNOWN
    fps = _num(cam, "fps")
    return Cell(
        f"{value}" + (f" {fps:.0f} fps" if fps is not None and value == "ok" else ""),
        "ok" if value == "ok" else "bad",
    )


def recording(state: dict[str, Any], now: datetime) -> Cell:
    value = _section(state, "recording").get("state")
    if value is None:
        return UNKNOWN
    return Cell(str(value), "ok" if value == "recording" else "bad")


def disk(state: dict[str, Any], now: datetime) -> Cell:
    d = _section(state, "disk")
    free, total = _num(d, "free_bytes"), _num(d, "total_bytes")
    oldest = _parse_time(d.get("oldest_footage_at"))
    retention = _num(d, "retention_days")
    if oldest is None and free is None:
        return UNKNOWN
    horizon = max(0.0, (now - oldest).total_seconds() / 86400) if oldest else None
    text = f"{horizon:.1f} d" if horizon is not None else "no footage"
    if retention:
        text += f" of {retention:.0f} d"
    if free is not None and total:
        text += f", {human_bytes(free)} free"
    level = "ok"
    if retention and horizon is not None and horizon < retention / 2:
        level = "warn"
    if _num(d, "events_lost"):
        level = "bad"
    return Cell(text, level)


def uploads(state: dict[str, Any], now: datetime) -> Cell:
    u = _section(state, "uploads")
    pending, age = _num(u, "pending"), _num(u, "oldest_pending_age_s")
    if pending is None:
        return UNKNOWN
    text = f"{pending:.0f} pending ({human_bytes(_num(u, 'pending_bytes'))})"
    if pending and age:
        text += f", oldest {human_age(age)}"
    level = "bad" if _num(u, "failed") else "warn" if pending and age and age > 3600 else "ok"
    return Cell(text, level)


def data(state: dict[str, Any], now: datetime) -> Cell:
    d = _section(state, "data")
    used, budget = _num(d, "used_bytes"), _num(d, "budget_bytes")
    if used is None or not budget:
        return UNKNOWN
    share = used / budget
    held = _num(_section(state, "uploads"), "held_by_budget")
    level = "bad" if held else "warn" if share >= 0.9 else "ok"
    return Cell(f"{share:.0%} of {human_bytes(budget)}" + (f", {held:.0f} held" if held else ""), level)


def clock(state: dict[str, Any], now: datetime) -> Cell:
    c = _section(state, "clock")
    offset, synced = _num(c, "offset_s"), c.get("synced")
    if synced is None and offset is None:
        return UNKNOWN
    if synced is False:
        return Cell("not synced", "bad")
    text = f"synced ({c.get('source') or '?'})" + (f" {offset:+.3f} s" if offset is not None else "")
    return Cell(text, "warn" if offset is not None and abs(offset) > 2 else "ok")


def signal(state: dict[str, Any], now: datetime) -> Cell:
    modem = _section(state, "modem")
    value = _num(modem, "signal_percent")
    if value is None:
        return UNKNOWN
    label = f"{value:.0f}% {modem.get('technology') or ''} {modem.get('operator') or ''}".strip()
    return Cell(label, "warn" if value < 20 else "ok")


_FORMATTERS = {
    "camera": camera,
    "recording": recording,
    "disk": disk,
    "uploads": uploads,
    "data": data,
    "clock": clock,
    "signal": signal,
}


def cells(last_state: Any, now: datetime) -> dict[str, Cell]:
    """Every column for one unit; all '?' when the unit has never sent a heartbeat."""
    state = last_state if isinstance(last_state, dict) else {}
    return {name: _FORMATTERS[name](state, now) for name in COLUMNS}
