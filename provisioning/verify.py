"""`cctv-provision verify ID`: the commissioning check a field engineer runs on site. Reads what
the unit reported to the control room and what it uploaded, prints a pass/fail table with what to
do for each failure, and saves a one-page commissioning record in the control room.

Checks: recent heartbeat, camera frames, clock synced, GPS within the site's radius, 4G signal,
disk health, and a test event recorded, uploaded and verified by SHA-256 against the bucket.
"""

from __future__ import annotations

import argparse
import getpass
import hashlib
import math
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from control_room import custody
from control_room.models import Deployment, Event, EventState, Unit
from protocol.times import parse_aware
from provisioning import control
from provisioning.settings import ProvisionError, Settings
from provisioning.storage import BOTO_ERRORS, describe, s3_client

MIN_SIGNAL_PERCENT = 20.0
MIN_FREE_FRACTION = 0.15


@dataclass(frozen=True)
class Check:
    name: str
    passed: bool
    detail: str
    fix: str = ""


@dataclass(frozen=True)
class Limits:
    max_heartbeat_age_s: float = 180.0
    radius_m: float = 100.0
    event_since: datetime | None = None


def distance_m(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle distance (haversine, mean Earth radius)."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * 6_371_000 * math.asin(math.sqrt(a))


def _ts(text: Any) -> datetime | None:
    if not isinstance(text, str):
        return None
    try:
        return parse_aware(text)
    except ValueError:
        return None


def state_checks(unit: Unit, site: Any, now: datetime, limits: Limits) -> list[Check]:
    state: dict[str, Any] = unit.last_state or {}
    checks = []
    age = (now - unit.last_seen_at).total_seconds() if unit.last_seen_at else None
    checks.append(Check("heartbeat", age is not None and age <= limits.max_heartbeat_age_s,
                        f"last {age:.0f} s ago" if age is not None else "never received",
                        "check 4G (SIM, APN, antenna) and `journalctl -u cctv-agent` on the unit; "
                        "is the token in /etc/cctv-agent/secrets.env the unit's?"))
    cam = state.get("camera") or {}
    fps = cam.get("fps") or 0
    frame_at = _ts(cam.get("last_frame_at"))
    fresh = frame_at is not None and unit.last_seen_at is not None and \
        abs((unit.last_seen_at - frame_at).total_seconds()) <= 60
    checks.append(Check("camera", cam.get("state") == "ok" and fps > 0 and fresh,
                        f"{cam.get('state', 'not reported')}, {fps:.1f} fps"
                        + ("" if fresh else ", frames stale"),
                        "reseat the camera ribbon cable; `rpicam-hello --list-cameras`; check config.txt"))
    clock = state.get("clock") or {}
    checks.append(Check("clock", clock.get("synced") is True,
                        f"synced={clock.get('synced')} via {clock.get('source') or '?'}"
                        + (f", offset {clock['offset_s']:+.3f} s"
                           if clock.get("offset_s") is not None else ""),
                        "no NTP over 4G: check data; `chronyc sources`; with GPS fitted wait for a fix"))
    gps = state.get("gps") or {}
    if gps.get("fix") in ("2d", "3d") and gps.get("lat") is not None and site is not None:
        d = distance_m(gps["lat"], gps["lon"], site.lat, site.lon)
        checks.append(Check("gps", d <= limits.radius_m, f"{gps['fix']} fix {d:.0f} m from {site.name}",
                            "is the unit at the planned site? correct the deployment's site in the control "
                            "room, or move the unit"))
    elif site is None:
        checks.append(Check("gps", False, "no active deployment: no site to compare with",
                            "create the deployment (site, purpose, DPIA) in the control room first"))
    else:
        checks.append(Check("gps", False, f"no fix ({gps.get('fix') or 'not reported'})",
                            "give the antenna a clear view of the sky; `gpsmon` on the unit"))
    modem = state.get("modem") or {}
    signal = modem.get("signal_percent")
    checks.append(Check("4g signal", signal is not None and signal >= MIN_SIGNAL_PERCENT,
                        f"{signal}% {modem.get('technology') or ''} {modem.get('operator') or ''}".strip()
                        if signal is not None else "not reported",
                        "raise or turn the antenna; try another operator's SIM; `mmcli -m 0`"))
    disk = state.get("disk") or {}
    total, free = disk.get("total_bytes"), disk.get("free_bytes")
    ok = (bool(total) and free is not None and free / total >= MIN_FREE_FRACTION
          and not disk.get("events_lost"))
    checks.append(Check("disk", ok, f"{free / 1e9:.1f} of {total / 1e9:.1f} GB free, events lost "
                        f"{disk.get('events_lost', 0)}" if total and free is not None else "not reported",
                        "replace the SD card (endurance type) or free space; `cctv-agent status`"))
    return checks


def event_check(session: Session, settings: Settings, unit: Unit, since: datetime, s3: Any) -> Check:
    fix = "walk through the camera's view, wait a minute for the upload, and run verify again"
    event = session.scalar(select(Event).where(Event.unit_pk == unit.id, Event.start >= since,
                                               Event.state == EventState.CLIP_UPLOADED)
                           .order_by(Event.start.desc()).limit(1))
    if event is None:
        return Check("test event", False, f"no uploaded event since {since:%H:%M:%S}Z", fix)
    clip = (event.objects or {}).get("clip") or {}
    try:
        body = s3.get_object(Bucket=event.bucket or settings.bucket, Key=clip["key"])["Body"]
        digest = hashlib.sha256()
        size = 0
        for chunk in iter(lambda: body.read(1 << 20), b""):
            digest.update(chunk)
            size += len(chunk)
    except (KeyError, *BOTO_ERRORS) as exc:
        err = describe(exc, "reading the clip") if not isinstance(exc, KeyError) else "no clip key"
        return Check("test event", False, f"{event.event_id}: {err}",
                     "check the bucket and the unit's upload queue (`cctv-agent uploads`)")
    good = digest.hexdigest() == clip.get("sha256") and size == clip.get("size")
    return Check("test event", good, f"{event.event_id}: clip {size} B, SHA-256 "
                 f"{'matches' if good else 'DIFFERS from'} the unit's", fix if good else
                 "the clip in the bucket is not what the unit recorded: report it, do not deploy")


def run_checks(settings: Settings, unit_id: str, limits: Limits, now: datetime | None = None,
               engineer: str = "", save: bool = True) -> tuple[list[Check], str]:
    now = now or datetime.now(UTC)
    since = limits.event_since or now - timedelta(minutes=15)
    eng = control.engine(settings)
    try:
        with Session(eng, expire_on_commit=False) as session:
            unit = session.scalar(select(Unit).where(Unit.unit_id == unit_id))
            if unit is None:
                raise ProvisionError(f"no unit {unit_id!r} in the control room")
            custody.refuse_if_stolen(session, unit)
            deployment = session.scalar(select(Deployment).where(
                Deployment.unit_pk == unit.id, Deployment.recovered_at.is_(None)).order_by(
                Deployment.start.desc()).limit(1))
            site = deployment.site if deployment is not None else None
            checks = state_checks(unit, site, now, limits)
            checks.append(event_check(session, settings, unit, since, s3_client(settings)))
            passed = all(c.passed for c in checks)
            record = render_record(unit, site, checks, now, engineer, passed)
            if save:
                custody.save_commissioning(session, unit, now, engineer, passed, [asdict(c) for c in checks],
                                           record)
                session.commit()
    finally:
        eng.dispose()
    return checks, record


def table(checks: list[Check]) -> str:
    lines = [f"{'check':<11} {'result':<6} detail", "-" * 78]
    for c in checks:
        lines.append(f"{c.name:<11} {'PASS' if c.passed else 'FAIL':<6} {c.detail}")
        if not c.passed:
            lines.append(f"{'':<18}what to do: {c.fix}")
    return "\n".join(lines)


def render_record(unit: Unit, site: Any, checks: list[Check], now: datetime, engineer: str,
                  passed: bool) -> str:
    where = f"{site.name} ({site.lat:.5f}, {site.lon:.5f})" if site is not None else "no deployment"
    return "\n".join([
        f"COMMISSIONING RECORD: unit {unit.unit_id}",
        f"Council: {unit.council.name}    Site: {where}",
        f"Date (UTC): {now:%Y-%m-%d %H:%M:%S}    Engineer: {engineer or '-'}",
        f"Software: {unit.software_version or '-'}",
        "",
        table(checks),
        "",
        f"RESULT: {'PASSED - unit live' if passed else 'FAILED - do not leave the unit unattended'}",
    ]) + "\n"


def main(args: argparse.Namespace, settings: Settings) -> int:
    since = None
    if args.event_since:
        from provisioning.cli import _utc

        since = _utc(args.event_since)
    engineer = args.engineer or getpass.getuser()
    limits = Limits(args.max_heartbeat_age_s, args.radius_m, since)
    checks, record = run_checks(settings, args.unit_id, limits, engineer=engineer, save=not args.no_record)
    print(record, end="")
    if not args.no_record:
        print("commissioning record saved in the control room")
    return 0 if all(c.passed for c in checks) else 1
