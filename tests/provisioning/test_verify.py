"""`cctv-provision verify ID`: the commissioning table from what the unit reported and uploaded,
against the IAM-enforcing S3 server and a real control room: all PASS with a good unit, and each
failure named with what to do; the one-page record saved in the control room either way.
"""

from __future__ import annotations

import copy
import hashlib
import os
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from control_room import custody
from control_room.db import get_engine, session_scope
from control_room.models import Deployment, Event, Site, Unit
from provisioning.inventory import Inventory
from tests.control_room import bodies
from tests.provisioning.conftest import BUCKET, VAULT_PASSWORD, Store

UNIT = "herts-mcu-010"
SITE = (51.705, -0.278)


def setup_unit(cli: Any, control_room: Any, inventory: Path) -> tuple[dict[str, str], str]:
    assert cli("bucket", "setup").code == 0
    assert cli("unit", "add", UNIT, "--council", "herts").code == 0
    with session_scope(get_engine(control_room)) as s:
        unit = s.scalar(select(Unit).where(Unit.unit_id == UNIT))
        site = Site(council_id=unit.council_id, name="Shenley Road", lat=SITE[0], lon=SITE[1])
        s.add(site)
        s.flush()
        s.add(Deployment(unit_pk=unit.id, site_id=site.id, purpose="ASB hotspot", dpia_ref="DPIA-1",
                         start=datetime.now(UTC) - timedelta(hours=1), review_date=date(2027, 1, 1)))
    sec = Inventory(inventory, VAULT_PASSWORD).read_secrets(UNIT)
    return ({"aws_access_key_id": sec.s3_access_key_id, "aws_secret_access_key": sec.s3_secret_access_key},
            sec.status_token)


def report(control_room: Any, token: str, **changes: Any) -> None:
    clock = control_room.extensions["cctv_clock"]
    clock.set_wall(time.time())
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")
    body = copy.deepcopy(bodies.heartbeat(UNIT))
    body["camera"]["last_frame_at"] = now
    body["gps"] = {"fix": "3d", "lat": SITE[0] + 0.0002, "lon": SITE[1], "time": now}
    body.update(changes)
    res = control_room.test_client().post(f"/api/v1/units/{UNIT}/heartbeat", json=body,
                                          headers={"Authorization": f"Bearer {token}"})
    assert res.status_code == 200, res.json


def test_event(control_room: Any, store: Store, creds: dict[str, str], token: str) -> bytes:
    """The unit uploads a clip with its own key and notifies the control room."""
    clip = os.urandom(200_000)
    start = datetime.now(UTC) - timedelta(seconds=30)
    stamp = start.strftime("%Y%m%dT%H%M%S.000Z")
    key = f"units/{UNIT}/{start:%Y/%m/%d}/{UNIT}-{stamp}/clip.mp4"
    store.s3(creds).put_object(Bucket=BUCKET, Key=key, Body=clip)
    note = bodies.event(UNIT, stamp=stamp, state="clip_uploaded", end=None, clip_start=None, clip_end=None,
                        peak_time=None, start=start.strftime("%Y-%m-%dT%H:%M:%S.000Z"))
    note["objects"]["clip"] = {"key": key, "size": len(clip), "sha256": hashlib.sha256(clip).hexdigest()}
    res = control_room.test_client().post(f"/api/v1/units/{UNIT}/events", json=note,
                                          headers={"Authorization": f"Bearer {token}"})
    assert res.status_code == 200, res.json
    return clip


test_event.__test__ = False  # type: ignore[attr-defined]  # a helper, not a test


def rows(out: str) -> dict[str, str]:
    """check name -> its line (and its 'what to do' line after a failure)."""
    found: dict[str, str] = {}
    name = ""
    for line in out.splitlines():
        if " PASS " in line or " FAIL " in line:
            name = "4g signal" if line.startswith("4g") else line.split()[0]
            found[name] = line
        elif name and line.strip().startswith("what to do:"):
            found[name] += "\n" + line
    return found


def test_a_good_unit_passes_and_the_record_is_saved(cli: Any, store: Store, control_room: Any,
                                                    inventory: Path) -> None:
    creds, token = setup_unit(cli, control_room, inventory)
    report(control_room, token)
    test_event(control_room, store, creds, token)
    done = cli("verify", UNIT, "--engineer", "j.smith")
    assert done.code == 0, done.out + done.err
    table = rows(done.out)
    assert len(table) == 7 and all(" PASS " in r for r in table.values()), done.out
    assert "SHA-256 matches" in table["test"] and "m from Shenley Road" in table["gps"]
    with Session(get_engine(control_room)) as s:
        unit = s.scalar(select(Unit).where(Unit.unit_id == UNIT))
        rec = custody.commissioning_records(s, unit)[0]
        assert rec.passed and rec.engineer == "j.smith" and len(rec.checks) == 7
        assert "RESULT: PASSED" in rec.record_text and "Hertsmere" in rec.record_text


def test_each_failure_is_named_with_what_to_do(cli: Any, store: Store, control_room: Any,
                                               inventory: Path) -> None:
    creds, token = setup_unit(cli, control_room, inventory)
    none = cli("verify", UNIT)
    assert none.code == 1 and "heartbeat" in none.out and "never received" in none.out
    bad = copy.deepcopy(bodies.heartbeat(UNIT))
    report(control_room, token, clock={"synced": False, "source": "chrony"},
           camera={**bad["camera"], "state": "stalled", "fps": 0.0},
           modem={"signal_percent": 5, "technology": "lte", "operator": "EE", "state": "connected"},
           disk={"total_bytes": 32_000_000_000, "free_bytes": 1_000_000_000, "events_lost": 0},
           gps={"fix": "3d", "lat": SITE[0] + 0.01, "lon": SITE[1], "time": "2026-11-28T13:00:00Z"})
    clip = test_event(control_room, store, creds, token)
    # the object in the bucket is not what the unit recorded
    with Session(get_engine(control_room)) as s:
        key = s.scalars(select(Event)).first().objects["clip"]["key"]
    store.s3().put_object(Bucket=BUCKET, Key=key, Body=clip[:-1] + b"x")
    done = cli("verify", UNIT)
    assert done.code == 1 and "RESULT: FAILED" in done.out
    table = rows(done.out)
    assert " PASS " in table["heartbeat"]
    for name, fix in (("camera", "ribbon cable"), ("clock", "chronyc"), ("gps", "planned site"),
                      ("4g signal", "antenna"), ("disk", "SD card"), ("test", "not what the unit recorded")):
        assert " FAIL " in table[name] and fix in table[name], (name, table[name])
    with Session(get_engine(control_room)) as s:
        unit = s.scalar(select(Unit).where(Unit.unit_id == UNIT))
        assert [r.passed for r in custody.commissioning_records(s, unit)] == [False, False]


def test_unknown_or_stolen_unit_is_refused(cli: Any, control_room: Any, inventory: Path) -> None:
    done = cli("verify", "herts-mcu-999")
    assert done.code == 2 and "no unit" in done.err
    setup_unit(cli, control_room, inventory)
    assert cli("unit", "stolen", UNIT, "--since", "2026-11-28T00:00:00Z").code == 0
    done = cli("verify", UNIT)
    assert done.code == 2 and "stolen" in done.err
