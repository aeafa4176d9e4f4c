"""Control room pages under a growing fleet: how long the fleet page's live refresh and the events feed
take to answer and how big they are; writes benchmarks/results/control_room_web.json.

Method (also in docs/control_room_web.md):
- The app from `control_room.create_app` on a SQLite file, in process (Flask test client: the cost of
  the view, the queries and the template, not of the network), logged in as a partnership admin.
- Fleet sizes 100, 1,000 and 5,000 units, each with a realistic last heartbeat, a GPS position and
  (every other unit) an open deployment at a site; 20,000 events spread over the units.
- Measured per size, median and max of 5 requests after one warm-up: `/fleet/live` (the fragment the
  fleet page fetches every `web_poll_s`), the same filtered to units needing attention (1 in 10 has a
  stalled camera), and `/events/feed?after=<latest>` (the events page's poll when nothing is new).
- Baseline in the same run: `/api/v1/health`, the cheapest request the app serves.
"""

from __future__ import annotations

import json
import statistics
import sys
import tempfile
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from control_room import create_app, provision  # noqa: E402
from control_room.config import Settings  # noqa: E402
from control_room.db import get_engine, session_scope  # noqa: E402
from control_room.models import Deployment, Event, EventState, Site, Unit  # noqa: E402
from tests.control_room.web_fixtures import heartbeat_body, login  # noqa: E402

SIZES = (100, 1_000, 5_000)
EVENTS = 20_000
RUNS = 5


def populate(engine, units: int, now: datetime) -> None:  # noqa: ANN001
    with session_scope(engine) as s:
        provision.create_council(s, "herts", "Hertfordshire")
        provision.create_user(s, "pat", "admin", "correct horse battery", None)
        for i in range(units):
            unit, _ = provision.create_unit(s, f"herts-mcu-{i:05d}", "herts")
            body = heartbeat_body(unit.unit_id, camera={"state": "stalled" if i % 10 == 0 else "ok"})
            body.pop("schema")
            unit.last_state, unit.last_seen_at = body, now
            unit.lat, unit.lon = 51.70 + (i % 100) * 1e-3, -0.30 + (i // 100) * 1e-3
            if i % 2 == 0:
                site = Site(council_id=unit.council_id, name=f"site {i}", lat=unit.lat, lon=unit.lon)
                s.add(site)
                s.flush()
                s.add(Deployment(unit_pk=unit.id, site_id=site.id, purpose="p", dpia_ref="D-1",
                                 start=now, review_date=date(2027, 1, 1)))
        s.flush()
        unit_rows = s.query(Unit.id, Unit.unit_id, Unit.council_id).all()
        for n in range(EVENTS):
            pk, unit_id, council_id = unit_rows[n % len(unit_rows)]
            start = now - timedelta(seconds=n)
            s.add(Event(event_id=f"{unit_id}-{n}", unit_pk=pk, council_id=council_id, start=start,
                        state=EventState.CLIP_UPLOADED, bucket="cctv-footage", objects={}, boxes=[]))


def timed(client, url: str) -> dict:  # noqa: ANN001
    client.get(url)
    times, size = [], 0
    for _ in range(RUNS):
        t0 = time.perf_counter()
        answer = client.get(url)
        times.append((time.perf_counter() - t0) * 1000)
        assert answer.status_code == 200, (url, answer.status_code)
        size = len(answer.data)
    return {"median_ms": round(statistics.median(times), 2), "max_ms": round(max(times), 2), "bytes": size}


def run_size(units: int) -> dict:
    folder = Path(tempfile.mkdtemp(prefix="cr-web-bench-"))
    app = create_app(Settings(instance_dir=folder, secret_key="bench-secret-key-0123456789"), migrate=True)
    now = datetime.now(UTC)
    t0 = time.perf_counter()
    populate(get_engine(app), units, now)
    setup_s = time.perf_counter() - t0
    client = app.test_client()
    login(client, "pat")
    with session_scope(get_engine(app)) as s:
        latest = s.query(Event.id).order_by(Event.id.desc()).first()[0]
    result = {
        "units": units,
        "events": EVENTS,
        "setup_s": round(setup_s, 1),
        "baseline_health": timed(client, "/api/v1/health"),
        "fleet_live": timed(client, "/fleet/live"),
        "fleet_live_attention_only": timed(client, "/fleet/live?attention=1"),
        "events_feed_nothing_new": timed(client, f"/events/feed?after={latest}"),
    }
    get_engine(app).dispose()
    return result


def main() -> int:
    results = []
    for units in SIZES:
        result = run_size(units)
        print(json.dumps(result))
        results.append(result)
    out = ROOT / "benchmarks" / "results" / "control_room_web.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps({"machine_note": "shared 2-core machine; in-process Flask test client",
                               "runs": RUNS, "results": results}, indent=2) + "\n")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
