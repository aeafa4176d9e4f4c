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
- Live-update traffic of one open fleet page (`fleet_live_bytes_per_minute_200_units`, issue 13): 200
  units of one council, each sending a heartbeat every 60 s (staggered, signal, disk, queue and
  temperature moving as on real units) through the unit API, the page polling every 5 s for 3 minutes
  of the app's ManualClock; bytes of every answer (status line, headers, body). The page's current
  mechanism (changes since a cursor) beside the old one (the whole fragment each poll) in the same run,
  and the old figure measured on main before the change (`..._before`).
"""

from __future__ import annotations

import json
import random
import re
import statistics
import sys
import tempfile
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from report import write_results  # noqa: E402

from agent.clock import ManualClock  # noqa: E402
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


# ---------------------------------------------------------------- live-update traffic of one open fleet page
TRAFFIC_UNITS = 200
TRAFFIC_MINUTES = 3
# FullFragmentPoll measured by this script on main at 2258db5, before the fleet page changed (issue 13).
BEFORE_ISSUE_13 = 2_409_458


def response_bytes(answer) -> int:  # noqa: ANN001
    """What crosses the wire for one answer: status line, headers and body (HTTP/1.1, no compression)."""
    head = f"HTTP/1.1 {answer.status}\r\n" + "".join(f"{k}: {v}\r\n" for k, v in answer.headers.items())
    return len(head.encode()) + 2 + len(answer.data)


class FullFragmentPoll:
    """The fleet page before issue 13: the whole table (and map) fragment fetched every web_poll_s."""

    name = "full_fragment_poll"

    def __init__(self, client) -> None:  # noqa: ANN001
        self.client = client

    def poll(self) -> int:
        answer = self.client.get("/fleet/live")
        assert answer.status_code == 200, answer.status_code
        return response_bytes(answer)


class ChangesPoll:
    """The fleet page since issue 13: `/fleet/changes?t=<cursor>` every web_poll_s, answered with only
    the rows, summary and map points of units that changed (a full `/fleet/live` only to resync)."""

    name = "changes_since_cursor"

    def __init__(self, client) -> None:  # noqa: ANN001
        self.client = client
        page = client.get("/").get_data(as_text=True)
        self.t = re.search(r'id="fleet-state" data-t="([^"]+)"', page).group(1)

    def poll(self) -> int:
        answer = self.client.get("/fleet/changes", query_string={"t": self.t})
        assert answer.status_code == 200, answer.status_code
        data = answer.get_json()
        assert not data.get("resync"), data
        self.t = data["t"]
        return response_bytes(answer)


def heartbeat_for(unit_id: str, seq: int, rng: random.Random) -> dict:
    """A healthy unit's heartbeat whose numbers move as a real unit's do between two minutes."""
    body = heartbeat_body(unit_id, seq)
    body["modem"]["signal_percent"] = rng.randint(55, 80)
    body["disk"]["free_bytes"] = 40 * 1024**3 - seq * 30 * 1024**2
    body["uploads"]["pending"] = rng.choice((0, 0, 0, 1, 2))
    body["system"]["cpu_temp_c"] = round(rng.uniform(48, 56), 1)
    return body


def measure_traffic(poller_class) -> dict:  # noqa: ANN001
    """Bytes one open fleet page receives per minute, for 200 units each beating every 60 s (staggered)."""
    folder = Path(tempfile.mkdtemp(prefix="cr-web-traffic-"))
    clock = ManualClock(wall=1_795_000_000.0)
    app = create_app(Settings(instance_dir=folder, secret_key="bench-secret-key-0123456789",
                              heartbeat_interval_s=60, web_poll_s=5), migrate=True, clock=clock)
    tokens: dict[str, str] = {}
    with session_scope(get_engine(app)) as s:
        provision.create_council(s, "herts", "Hertfordshire")
        provision.create_user(s, "olga", "officer", "correct horse battery", "herts")
        for i in range(TRAFFIC_UNITS):
            unit, token = provision.create_unit(s, f"herts-mcu-{i:03d}", "herts")
            tokens[unit.unit_id] = token
            unit.lat, unit.lon = 51.70 + (i % 20) * 2e-3, -0.30 + (i // 20) * 2e-3
            if i % 2 == 0:
                site = Site(council_id=unit.council_id, name=f"site {i}", lat=unit.lat, lon=unit.lon)
                s.add(site)
                s.flush()
                s.add(Deployment(unit_pk=unit.id, site_id=site.id, purpose="p", dpia_ref="D-1",
                                 start=clock.now(), created_at=clock.now(), review_date=date(2027, 1, 1)))
    rng = random.Random(13)
    client = app.test_client()
    seqs = dict.fromkeys(tokens, 0)

    def beat(unit_id: str) -> None:
        seqs[unit_id] += 1
        answer = client.post(f"/api/v1/units/{unit_id}/heartbeat",
                             json=heartbeat_for(unit_id, seqs[unit_id], rng),
                             headers={"Authorization": f"Bearer {tokens[unit_id]}"})
        assert answer.status_code == 200, answer.get_data(as_text=True)

    for unit_id in tokens:  # every unit online before the page opens
        beat(unit_id)
    login(client, "olga")
    page = poller_class(client)
    page.poll()  # the first poll after the page load
    poll_s, steps = 5, TRAFFIC_MINUTES * 60 // 5
    order = list(tokens)
    total = 0
    due: dict[int, list[str]] = {}  # second of the minute -> the units beating then (spread evenly)
    for i, unit_id in enumerate(order):
        due.setdefault(i * 60 // len(order), []).append(unit_id)
    second = 0
    for _ in range(steps):
        for _ in range(poll_s):
            clock.advance(1)
            second += 1
            for unit_id in due.get(second % 60, []):
                beat(unit_id)
        total += page.poll()
    get_engine(app).dispose()
    return {"mechanism": poller_class.name, "units": TRAFFIC_UNITS, "poll_s": poll_s,
            "minutes": TRAFFIC_MINUTES, "bytes_per_minute": round(total / TRAFFIC_MINUTES)}


def main(argv: list[str]) -> int:
    """All of it; `--traffic-only` re-measures the live-update traffic and keeps the other figures."""
    out = ROOT / "benchmarks" / "results" / "control_room_web.json"
    previous = json.loads(out.read_text()) if out.exists() else {}
    if "--traffic-only" in argv:
        results = previous.get("results", [])
    else:
        results = []
        for units in SIZES:
            result = run_size(units)
            print(json.dumps(result))
            results.append(result)
    traffic = [measure_traffic(ChangesPoll), measure_traffic(FullFragmentPoll)]
    report = {
        "machine_note": "shared 2-core machine; in-process Flask test client",
        "runs": RUNS,
        "fleet_live_bytes_per_minute_200_units": traffic[0]["bytes_per_minute"],
        "fleet_live_bytes_per_minute_200_units_before": BEFORE_ISSUE_13,
        "fleet_live_bytes_per_minute_200_units_full_fragment_same_run": traffic[1]["bytes_per_minute"],
        "live_traffic": traffic,
        "results": results,
    }
    write_results(out, report, shown={k: v for k, v in report.items() if k != "results"})
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
