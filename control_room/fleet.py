"""Fleet status for people: online/offline (no heartbeat for N intervals) and the attention badges
derived from a unit's last heartbeat; pure functions over models, reused by the web pages.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import Select, select
from sqlalchemy.orm import Session, selectinload

from control_room.config import Settings
from control_room.gps import distance_m
from control_room.models import Deployment, Unit, User
from protocol.times import parse_aware

LOW_SIGNAL_PERCENT = 20
HOT_CPU_C = 75.0
BACKLOG_AGE_S = 3600.0
DATA_BUDGET_WARN = 0.9
DISK_HORIZON_WARN = 0.5  # footage reaches back less than half the retention period
SITE_DISTANCE_WARN_M = 200.0


@dataclass(frozen=True)
class Badge:
    key: str  # stable identifier, e.g. "offline", for CSS and tests
    text: str  # what a person reads
    severity: str = "warning"  # "warning" or "alarm"


@dataclass(frozen=True)
class UnitStatus:
    unit: Unit
    online: bool
    last_seen_age_s: float | None
    badges: list[Badge] = field(default_factory=list)

    @property
    def needs_attention(self) -> bool:
        return bool(self.badges)


def _get(state: dict[str, Any] | None, part: str, key: str) -> Any:
    section = (state or {}).get(part) or {}
    return section.get(key) if isinstance(section, dict) else None


def unit_status(unit: Unit, now: datetime, settings: Settings) -> UnitStatus:
    age = (now - unit.last_seen_at).total_seconds() if unit.last_seen_at else None
    online = unit.revoked_at is None and age is not None and age <= settings.offline_after_s()
    return UnitStatus(unit, online, age, badges(unit, online, now))


def badges(unit: Unit, online: bool, now: datetime) -> list[Badge]:
    """Everything about the unit that needs a person's attention, worst first."""
    if unit.revoked_at is not None:
        return [Badge("revoked", "token revoked", "alarm")]
    if unit.last_seen_at is None:
        return [Badge("never_seen", "no heartbeat yet")]
    s = unit.last_state or {}
    out: list[Badge] = [] if online else [Badge("offline", "offline", "alarm")]
    camera = _get(s, "camera", "state")
    if camera not in (None, "ok"):
        out.append(Badge("camera", f"camera {camera}", "alarm"))
    recording = _get(s, "recording", "state")
    if recording not in (None, "recording"):
        out.append(Badge("recording", f"recording {recording}", "alarm"))
    if (_get(s, "disk", "events_lost") or 0) > 0:
        out.append(Badge("events_lost", f"{_get(s, 'disk', 'events_lost')} events lost", "alarm"))
    horizon = disk_horizon_days(s, now)
    retention = _get(s, "disk", "retention_days")
    if horizon is not None and retention and horizon < retention * DISK_HORIZON_WARN:
        out.append(Badge("disk", f"footage covers {horizon:.1f} of {retention} days"))
    if (_get(s, "uploads", "oldest_pending_age_s") or 0) > BACKLOG_AGE_S:
        out.append(Badge("backlog", f"{_get(s, 'uploads', 'pending')} uploads waiting"))
    used, budget = _get(s, "data", "used_bytes"), _get(s, "data", "budget_bytes")
    if used is not None and budget and used >= budget * DATA_BUDGET_WARN:
        out.append(Badge("data_budget", f"data {100 * used / budget:.0f}% of budget"))
    if _get(s, "clock", "synced") is False:
        out.append(Badge("clock", "clock not synchronised"))
    signal = _get(s, "modem", "signal_percent")
    if signal is not None and signal < LOW_SIGNAL_PERCENT:
        out.append(Badge("signal", f"weak signal {signal:.0f}%"))
    temp = _get(s, "system", "cpu_temp_c")
    if temp is not None and temp >= HOT_CPU_C:
        out.append(Badge("temperature", f"hot {temp:.0f} °C"))
    if _get(s, "system", "undervoltage"):
        out.append(Badge("power", "under-voltage", "alarm"))
    if unit.gps_flag:
        out.append(Badge("gps_implausible", unit.gps_flag))
    return out


def disk_horizon_days(state: dict[str, Any], now: datetime) -> float | None:
    """How far back the unit's footage reaches, in days."""
    oldest = _get(state, "disk", "oldest_footage_at")
    if not isinstance(oldest, str):
        return None
    try:
        then = parse_aware(oldest)
    except ValueError:
        return None
    return max(0.0, (now - then).total_seconds() / 86400)


def map_position(unit: Unit) -> tuple[float, float] | None:
    """Where to put the unit on a map: its last believed fix, or nowhere while its GPS is implausible."""
    if unit.lat is None or unit.lon is None or unit.gps_flag:
        return None
    return unit.lat, unit.lon


def human_distance(metres: float) -> str:
    """A distance people read at a glance: "35 m", "850 m", "30.3 km", "212 km"."""
    if metres < 1000:
        return f"{metres:.0f} m"
    return f"{metres / 1000:.1f} km" if metres < 100_000 else f"{metres / 1000:.0f} km"


def active_deployment(unit: Unit) -> Deployment | None:
    return next((d for d in unit.deployments if d.recovered_at is None), None)


def deployment_flags(deployment: Deployment, unit: Unit, today: date,
                     far_m: float = SITE_DISTANCE_WARN_M) -> list[Badge]:
    """Overdue review, planned end passed, a GPS position far from the site, signage not confirmed."""
    out: list[Badge] = []
    if deployment.recovered_at is None and deployment.review_date < today:
        out.append(Badge("review_overdue", f"review overdue since {deployment.review_date.isoformat()}"))
    if deployment.recovered_at is None and deployment.planned_end and deployment.planned_end.date() < today:
        out.append(Badge("past_planned_end", "past planned end"))
    position = map_position(unit)
    if position is not None and deployment.recovered_at is None:
        metres = distance_m(*position, deployment.site.lat, deployment.site.lon)
        if metres > far_m:
            out.append(Badge("far_from_site", f"{human_distance(metres)} from site", "alarm"))
    if deployment.recovered_at is None and not deployment.signage_confirmed:
        out.append(Badge("signage", "signage not confirmed"))
    return out


def units_query(user: User) -> Select[tuple[Unit]]:
    """The units a user may see: their council's, or every council's for a partnership admin."""
    stmt = select(Unit).options(selectinload(Unit.deployments)).order_by(Unit.unit_id)
    return stmt if user.partnership_wide else stmt.where(Unit.council_id == user.council_id)


def fleet(session: Session, user: User, now: datetime, settings: Settings) -> list[UnitStatus]:
    return [unit_status(u, now, settings) for u in session.scalars(units_query(user)).all()]


def offline_since(unit: Unit, settings: Settings) -> datetime | None:
    if unit.last_seen_at is None:
        return None
    return unit.last_seen_at + timedelta(seconds=settings.offline_after_s())
