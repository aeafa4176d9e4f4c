"""Benchmark: unit heartbeats while strangers flood the login form (issue 13, item 3).

One control room process (`cctv-control-room serve`, waitress, SQLite) with 10,000 units sending
heartbeats open-loop at 166.7 req/s, first alone and then, in the same run and the same process,
with 20 failed logins per second: each from its own loopback address (127.0.x.y) and for its own
user name (password spraying), so neither the per-address nor the per-name limit stops them and
every one reaches the password-hashing pool: the hardest case for the unit API's threads.
Heartbeat latency counts from each request's scheduled send time. Writes
benchmarks/results/login_flood.json with heartbeat_p99_ms_with_login_flood and heartbeat_p99_ms_without.
"""

from __future__ import annotations

import argparse
import http.client
import importlib.util
import itertools
import os
import platform
import queue
import re
import sys
import threading
import time
import urllib.parse
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from report import write_results  # noqa: E402

_spec = importlib.util.spec_from_file_location("bench_control_room", HERE / "control_room.py")
bench = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(bench)  # the heartbeat harness: server, fleet, workers, latency summary

CSRF_RE = re.compile(r'name="csrf_token" value="([^"]+)"')


def heartbeat_jobs(tokens: list[tuple[str, str]], counter: itertools.count):  # noqa: ANN201
    """Heartbeats with a sequence number that only grows, so every one is applied (never stale)."""

    def make(scheduled: float) -> tuple:
        i = next(counter)
        unit_id, token = tokens[i % len(tokens)]
        headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
        return (scheduled, "POST", f"/api/v1/units/{unit_id}/heartbeat", bench.heartbeat_body(unit_id, i),
                headers)

    return make


def heartbeats(port: int, pid: int, make_job, rate: float, duration: float, workers: int = 32) -> dict:  # noqa: ANN001
    jobs: queue.Queue = queue.Queue()
    out: list[tuple[float, int]] = []
    pool = [bench.Worker(port, jobs, out) for _ in range(workers)]
    for w in pool:
        w.start()
    total = max(1, int(rate * duration))
    cpu0, t0 = bench.cpu_seconds(pid), time.perf_counter()
    for i in range(total):
        scheduled = t0 + i / rate
        delay = scheduled - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
        jobs.put(make_job(scheduled))
    for _ in pool:
        jobs.put(None)
    for w in pool:
        w.join()
    return bench._summary(out, time.perf_counter() - t0, bench.cpu_seconds(pid) - cpu0) | {
        "offered_per_s": round(rate, 2)}


# ---------------------------------------------------------------- the login flood
def source_address(n: int) -> str:
    return f"127.0.{1 + n // 250}.{1 + n % 250}"


def login_form(port: int, ip: str) -> tuple[str, str]:
    """(session cookie, CSRF token) for a stranger at `ip`: GET /login as a browser would."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30, source_address=(ip, 0))
    try:
        conn.request("GET", "/login")
        response = conn.getresponse()
        html = response.read().decode()
        cookie = response.getheader("Set-Cookie", "").split(";", 1)[0]
    finally:
        conn.close()
    match = CSRF_RE.search(html)
    if not match or not cookie:
        raise RuntimeError("no login form or cookie")
    return cookie, match.group(1)


class Flood(threading.Thread):
    """Failed logins at `rate` per second for `duration` s, each from its own address and name."""

    def __init__(self, port: int, rate: float, duration: float, forms: list[tuple[str, str, str]],
                 workers: int = 32) -> None:
        super().__init__(daemon=True)
        self.port, self.rate, self.duration, self.forms = port, rate, duration, forms
        self.statuses: Counter[int] = Counter()
        self.latencies: list[float] = []
        self._jobs: queue.Queue = queue.Queue()
        self._senders = [threading.Thread(target=self._send_loop, daemon=True) for _ in range(workers)]
        self._lock = threading.Lock()

    def run(self) -> None:
        for s in self._senders:
            s.start()
        total, t0 = int(self.rate * self.duration), time.perf_counter()
        for i in range(total):
            delay = t0 + i / self.rate - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            self._jobs.put((time.perf_counter(), i))
        for _ in self._senders:
            self._jobs.put(None)
        for s in self._senders:
            s.join()

    def _send_loop(self) -> None:
        while (job := self._jobs.get()) is not None:
            scheduled, i = job
            ip, cookie, token = self.forms[i % len(self.forms)]
            body = urllib.parse.urlencode({"username": f"spray-{i:06d}", "password": "Winter2026!",
                                           "csrf_token": token})
            status = 0
            conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30, source_address=(ip, 0))
            try:
                conn.request("POST", "/login", body=body, headers={
                    "Cookie": cookie, "Content-Type": "application/x-www-form-urlencoded"})
                response = conn.getresponse()
                response.read()
                status = response.status
            except (OSError, http.client.HTTPException):
                pass
            finally:
                conn.close()
            with self._lock:
                self.statuses[status] += 1
                self.latencies.append((time.perf_counter() - scheduled) * 1000)

    def summary(self) -> dict:
        return {"attempts": sum(self.statuses.values()),
                "answers": {str(k): v for k, v in sorted(self.statuses.items())},
                "p50_ms": round(bench._percentile(self.latencies, 0.5), 1),
                "p99_ms": round(bench._percentile(self.latencies, 0.99), 1)}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--units", type=int, default=10_000)
    p.add_argument("--interval", type=float, default=60.0, help="each unit's heartbeat interval, s")
    p.add_argument("--duration", type=float, default=60.0, help="seconds of each phase")
    p.add_argument("--login-rate", type=float, default=20.0, help="failed logins per second")
    p.add_argument("--threads", type=int, default=8, help="waitress threads in the one app process")
    p.add_argument("--out", default="login_flood")
    args = p.parse_args(argv)
    rate = args.units / args.interval
    addresses = max(100, int(args.login_rate * args.duration / 6))  # ~6 attempts per address: under its limit
    with bench.database("sqlite") as url:
        engine = bench.make_engine(url)
        bench.migrate.upgrade(engine)
        engine.dispose()
        tokens: list[tuple[str, str]] = []
        bench.provision_up_to(url, args.units, tokens)
        with bench.serve(url, args.threads) as (port, pid):
            forms = [(ip, *login_form(port, ip)) for ip in map(source_address, range(addresses))]
            make_job = heartbeat_jobs(tokens, itertools.count(1))
            heartbeats(port, pid, make_job, rate, min(10.0, args.duration))  # warm-up, not reported
            without = heartbeats(port, pid, make_job, rate, args.duration)
            print(f"without flood: {without}", flush=True)
            flood = Flood(port, args.login_rate, args.duration, forms)
            flood.start()
            with_flood = heartbeats(port, pid, make_job, rate, args.duration)
            flood.join()
            print(f"with flood: {with_flood}", flush=True)
    results = {
        "benchmark": "unit heartbeats during a failed-login flood, one app process (waitress, SQLite)",
        "generated_at": datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z"),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                    "platform": platform.platform(),
                    "note": "2 shared cores; load generators run on the same machine"},
        "settings": {"units": args.units, "heartbeats_per_s": round(rate, 1), "phase_s": args.duration,
                     "failed_logins_per_s": args.login_rate, "flood_addresses": addresses,
                     "waitress_threads": args.threads,
                     "flood": "each attempt from its own loopback address and user name (spraying)",
                     "latency": "from each request's scheduled send time (open loop)"},
        "heartbeat_p99_ms_without": without["p99_ms"],
        "heartbeat_p99_ms_with_login_flood": with_flood["p99_ms"],
        "target_p99_ms": 100,
        "met": with_flood["p99_ms"] < 100 and with_flood["errors"] == 0,
        "heartbeats_without": without,
        "heartbeats_with_login_flood": with_flood,
        "login_flood": flood.summary(),
    }
    write_results(args.out, results)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
