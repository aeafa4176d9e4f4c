"""Benchmark: sustained heartbeat intake by one control room process as the fleet grows.

For SQLite and PostgreSQL, serves the app with `cctv-control-room serve` (waitress, one process),
provisions 100, 1,000 and 10,000 units and replays their heartbeats open-loop at the rate the fleet
would send them (units / interval: 10,000 units at 60 s = ~167 req/s). Latency is measured from
each request's scheduled time, so a server that falls behind shows it. Baselines in the same run:
the /api/v1/health endpoint (HTTP + framework + one SELECT 1) and closed-loop saturation.
Each fleet size runs `--duration` s (15) or long enough for `--min-requests` (50), whichever is
longer: 30 s for 100 units, 250 requests for 1,000, 2,500 for 10,000.
Writes benchmarks/results/control_room.json.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import os
import platform
import queue
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sqlalchemy import func, insert, select  # noqa: E402

from control_room import migrate, provision  # noqa: E402
from control_room.db import make_engine, session_scope  # noqa: E402
from control_room.models import Council, Unit  # noqa: E402
from tests.control_room.pg import PostgresUnavailable, free_port, throwaway_postgres  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results" / "control_room.json"
SECRET = "benchmark-secret-key-0123456789abcdef"


def heartbeat_body(unit_id: str, seq: int) -> bytes:
    now = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    return json.dumps({
        "schema": 1, "unit_id": unit_id, "seq": seq, "sent_at": now, "reason": "interval",
        "software_version": "0.1.0", "boot_id": "5c7e0d7f1b2a", "uptime_s": 86400 + seq,
        "clock": {"synced": True, "offset_s": 0.012, "source": "chrony"},
        "camera": {"state": "ok", "fps": 10.0, "last_frame_at": now, "restarts": 0, "error": None},
        "recording": {"state": "recording", "segment_seconds": 10, "last_segment_at": now},
        "motion": {"last_event_at": now, "events_today": 12},
        "disk": {"total_bytes": 64_000_000_000, "free_bytes": 20_000_000_000,
                 "oldest_footage_at": "2026-10-28T13:00:00Z", "retention_days": 31, "events_lost": 0},
        "uploads": {"pending": 3, "pending_bytes": 5242880, "oldest_pending_age_s": 42, "failed": 0,
                    "last_success_at": now, "held_by_budget": 0},
        "data": {"period_start": "2026-11-01T00:00:00Z", "used_bytes": 123456789, "budget_bytes": 8 * 10**9},
        "system": {"cpu_temp_c": 51.2, "undervoltage": False, "throttled": False, "throttled_flags": "0x0",
                   "load1": 0.4, "mem_total_bytes": 4 * 10**9, "mem_available_bytes": 3 * 10**9},
        "modem": {"signal_percent": 70, "operator": "EE", "technology": "lte", "state": "connected"},
        "gps": {"fix": "3d", "lat": 51.705, "lon": -0.278, "time": now},
        "config_version": "2026-11-20.1", "acked": [],
    }).encode()


# ---------------------------------------------------------------- fleet and server
def provision_up_to(url: str, n: int, tokens: list[tuple[str, str]]) -> None:
    """Add units (bulk insert, as provisioning would one by one) until the fleet has n."""
    engine = make_engine(url)
    with session_scope(engine) as s:
        council = s.scalar(select(Council).where(Council.slug == "bench"))
        if council is None:
            council = provision.create_council(s, "bench", "Benchmark council")
        rows, now = [], datetime.now(UTC)  # a bulk insert gets no row stamps from the session's clock
        for i in range(len(tokens), n):
            unit_id, token = f"bench-{i:05d}", provision.new_token()
            tokens.append((unit_id, token))
            rows.append({"unit_id": unit_id, "council_id": council.id, "name": "",
                         "token_hash": provision.hash_token(token), "created_at": now,
                         "token_created_at": now})
        if rows:
            s.execute(insert(Unit), rows)
        assert s.scalar(select(func.count()).select_from(Unit)) == n
    engine.dispose()


@contextlib.contextmanager
def serve(url: str, threads: int, *options: str) -> Iterator[tuple[int, int]]:
    """`cctv-control-room serve` (plus `options`, e.g. --unit-api-only) on a free port: (port, pid)."""
    port = free_port()
    env = {**os.environ, "CONTROL_ROOM_DATABASE_URL": url, "CONTROL_ROOM_SECRET_KEY": SECRET}
    code = "from control_room.cli import main; raise SystemExit(main())"
    proc = subprocess.Popen([sys.executable, "-c", code, "serve", "--port", str(port), "--threads",
                             str(threads), "--no-migrate", *options], env=env, cwd=tempfile.gettempdir(),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
                conn.request("GET", "/api/v1/health")
                if conn.getresponse().status == 200:
                    break
            except OSError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise RuntimeError("control room did not start") from None
                time.sleep(0.2)
        yield port, proc.pid
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


# ---------------------------------------------------------------- load generation
def _percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


class Worker(threading.Thread):
    """Sends requests from a queue on one keep-alive connection; records latency and status."""

    def __init__(self, port: int, jobs: queue.Queue, out: list[tuple[float, int]]) -> None:
        super().__init__(daemon=True)
        self.port, self.jobs, self.out = port, jobs, out
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)

    def run(self) -> None:
        while (job := self.jobs.get()) is not None:
            scheduled, method, path, body, headers = job
            status = self._send(method, path, body, headers)
            self.out.append((time.perf_counter() - scheduled, status))

    def _send(self, method: str, path: str, body: bytes | None, headers: dict[str, str]) -> int:
        for _ in range(2):
            try:
                self.conn.request(method, path, body=body, headers=headers)
                response = self.conn.getresponse()
                response.read()
                return response.status
            except (OSError, http.client.HTTPException):
                self.conn.close()
                self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        return 0


def _job(tokens: list[tuple[str, str]], i: int, scheduled: float) -> tuple:
    unit_id, token = tokens[i % len(tokens)]
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    return (scheduled, "POST", f"/api/v1/units/{unit_id}/heartbeat", heartbeat_body(unit_id, i), headers)


def open_loop(port: int, pid: int, tokens: list[tuple[str, str]], rate: float, duration: float,
              workers: int = 32) -> dict:
    """Requests at a fixed rate whatever the answers; latency counts from the scheduled time."""
    jobs: queue.Queue = queue.Queue()
    out: list[tuple[float, int]] = []
    pool = [Worker(port, jobs, out) for _ in range(workers)]
    for w in pool:
        w.start()
    total = max(1, int(rate * duration))
    cpu0, t0 = cpu_seconds(pid), time.perf_counter()
    for i in range(total):
        scheduled = t0 + i / rate
        delay = scheduled - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
        jobs.put(_job(tokens, i, scheduled))
    for _ in pool:
        jobs.put(None)
    for w in pool:
        w.join()
    elapsed, cpu = time.perf_counter() - t0, cpu_seconds(pid) - cpu0
    return _summary(out, elapsed, cpu) | {"offered_per_s": round(rate, 2)}


def closed_loop(port: int, pid: int, make_job, duration: float, concurrency: int) -> dict:
    """As fast as the server answers, `concurrency` requests in flight: the process's ceiling."""
    out: list[tuple[float, int]] = []
    stop = time.perf_counter() + duration
    counter = iter(range(10**9))
    lock = threading.Lock()

    def run() -> None:
        conn_jobs: queue.Queue = queue.Queue()
        worker = Worker(port, conn_jobs, out)
        while time.perf_counter() < stop:
            with lock:
                i = next(counter)
            job = make_job(i, time.perf_counter())
            conn_jobs.put(job)
            conn_jobs.put(None)
            worker.run()

    cpu0, t0 = cpu_seconds(pid), time.perf_counter()
    threads = [threading.Thread(target=run) for _ in range(concurrency)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return _summary(out, time.perf_counter() - t0, cpu_seconds(pid) - cpu0) | {"concurrency": concurrency}


def _summary(out: list[tuple[float, int]], elapsed: float, cpu: float) -> dict:
    latencies = [lat * 1000 for lat, status in out if status == 200]
    return {
        "requests": len(out), "errors": sum(1 for _, status in out if status != 200),
        "duration_s": round(elapsed, 2), "requests_per_s": round(len(latencies) / elapsed, 1),
        "p50_ms": round(_percentile(latencies, 0.50), 2), "p99_ms": round(_percentile(latencies, 0.99), 2),
        "max_ms": round(max(latencies, default=float("nan")), 2),
        "server_cpu_percent": round(100 * cpu / elapsed, 1),
        "machine_load_1m": round(os.getloadavg()[0], 2),  # other work on the shared machine
    }


# ---------------------------------------------------------------- databases and the run
@contextlib.contextmanager
def database(kind: str) -> Iterator[str]:
    if kind == "sqlite":
        with tempfile.TemporaryDirectory() as folder:
            yield f"sqlite:///{folder}/control_room.db"
    else:
        with throwaway_postgres(fsync=True) as server:
            yield server.create_database(migrated=False)


def level_duration(rate: float, args: argparse.Namespace) -> float:
    """Seconds of load for one fleet size: `--duration`, or enough for `--min-requests` at a low rate."""
    return max(args.duration, args.min_requests / rate)


def run_database(kind: str, args: argparse.Namespace) -> dict:
    with database(kind) as url:
        engine = make_engine(url)
        migrate.upgrade(engine)
        engine.dispose()
        tokens: list[tuple[str, str]] = []
        levels, saturation = [], None
        provision_up_to(url, 1, tokens)
        with serve(url, args.threads) as (port, pid):
            health = {"Content-Type": "application/json"}
            baseline = closed_loop(port, pid, lambda i, t: (t, "GET", "/api/v1/health", None, health),
                                   args.saturation_s, args.concurrency)
            for n in args.sizes:
                provision_up_to(url, n, tokens)
                fleet = tokens[:n]
                rate = n / args.interval
                result = open_loop(port, pid, fleet, rate, level_duration(rate, args))
                levels.append({"database": kind, "units": n, **result})
                print(json.dumps(levels[-1]), flush=True)
            saturation = closed_loop(port, pid, lambda i, t: _job(tokens, i, t), args.saturation_s,
                                     args.concurrency)
        return {"levels": levels,
                "baseline_health": {"database": kind, "endpoint": "GET /api/v1/health", **baseline},
                "saturation_heartbeat": {"database": kind, "units": len(tokens), **saturation}}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sizes", type=lambda s: [int(x) for x in s.split(",")], default=[100, 1000, 10000])
    p.add_argument("--interval", type=float, default=60.0, help="each unit's heartbeat interval, s")
    p.add_argument("--duration", type=float, default=15.0, help="seconds of sustained load per fleet size")
    p.add_argument("--min-requests", type=int, default=50,
                   help="a fleet size runs at least long enough for this many requests (small fleets)")
    p.add_argument("--saturation-s", type=float, default=6.0,
                   help="seconds of each closed-loop baseline (health, heartbeat saturation)")
    p.add_argument("--concurrency", type=int, default=16)
    p.add_argument("--threads", type=int, default=8, help="waitress threads in the one app process")
    p.add_argument("--databases", default="sqlite,postgresql")
    p.add_argument("--out", type=Path, default=RESULTS)
    args = p.parse_args(argv)
    results, skipped = [], {}
    baselines, saturation = [], []
    for kind in args.databases.split(","):
        try:
            run = run_database(kind, args)
        except PostgresUnavailable as exc:
            skipped[kind] = str(exc)
            print(f"skipping {kind}: {exc}", file=sys.stderr)
            continue
        results += run["levels"]
        baselines.append(run["baseline_health"])
        saturation.append(run["saturation_heartbeat"])
    target = max(args.sizes) / args.interval
    report = {
        "benchmark": "control room heartbeat intake, one app process (waitress)",
        "generated_at": datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z"),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                    "platform": platform.platform(),
                    "note": "2 shared cores; load generator runs on the same machine"},
        "settings": {"interval_s": args.interval, "duration_s": args.duration,
                     "min_requests": args.min_requests, "saturation_s": args.saturation_s,
                     "waitress_threads": args.threads,
                     "latency": "from each request's scheduled send time (open loop)",
                     "sqlite": "WAL, synchronous=FULL", "postgresql": "throwaway server, fsync=on"},
        "target": {"units": max(args.sizes), "requests_per_s": round(target, 1),
                   "met": {r["database"]: r["requests_per_s"] >= 0.98 * target and r["errors"] == 0
                           for r in results if r["units"] == max(args.sizes)}},
        "results": results,
        "baseline_health": baselines,
        "saturation_heartbeat": saturation,
        "skipped": skipped,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=1) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
