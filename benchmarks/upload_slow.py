"""Multipart clips on slow 4G-like links for benchmarks/upload.py: 256 kbit/s, 512 kbit/s and 2 Mbit/s
with 150/100/50 ms round trips, clips of three parts, default agent settings; clean and with a cut.

Every case has its own link (its own throttling proxy) in its own process, so the cases run at the same
time without sharing an interpreter lock; the baseline is plain boto3 `upload_file` (its defaults:
60 s read timeout, 8 MiB parts) on an equal link.
"""

from __future__ import annotations

import multiprocessing
import os
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3

from agent.clock import SystemClock
from agent.config import Config, parse_config
from agent.db import db_path
from agent.events.outbox import publish_event
from agent.upload.intake import object_prefix
from agent.upload.worker import RetryPolicy, UploadService
from tests.upload.conftest import ADMIN, REGION, publish
from tests.upload.faultproxy import FaultProxy

MIB = 1024 * 1024
PART = 5 * MIB  # what the agent picks on these links (S3's minimum)
CUT_DOWN_S = 5.0  # how long the link stays down at a cut
# Clean cases run with every default (config and RetryPolicy). In the cut cases a lane probes the cut
# link quickly (the default waits up to 30 s between probes, which would measure the wait, not the
# transfer); everything about the transfer itself is the default there too.
CUT_POLICY = RetryPolicy(transient_initial_s=0.5, transient_max_s=2.0)


@dataclass(frozen=True)
class Link:
    name: str
    rate_bps: float
    rtt_s: float
    clip_bytes: int  # three parts at the agent's part size

    def proxy(self, host: str, port: int) -> FaultProxy:
        p = FaultProxy(host, port).start()
        p.link.rate_bps, p.link.latency_s = self.rate_bps, self.rtt_s / 2
        return p


LINKS = (
    Link("256kbit", 256e3, 0.150, 2 * PART + 500_000),  # 11 MB: the smallest honest three-part clip
    Link("512kbit", 512e3, 0.100, 12_600_000),  # the 12.6 MB clip that never arrived before
    Link("2mbit", 2e6, 0.050, 12_600_000),
)


def default_config(data: Path, url: str, bucket: str) -> Config:
    """The agent's defaults (timeout_s 30, part_size_mb 8, threshold 8 MB, budget 8000 MB)."""
    up = {"endpoint_url": url, "region": REGION, "bucket": bucket}
    up |= {"access_key_id": ADMIN["aws_access_key_id"], "secret_access_key": ADMIN["aws_secret_access_key"]}
    return parse_config({"unit": {"id": "herts-mcu-001", "data_dir": str(data)}, "upload": up}, env={})


def _wait_object(s3: Any, bucket: str, key: str, timeout: float) -> float:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            s3.head_object(Bucket=bucket, Key=key)
            return time.monotonic()
        except s3.exceptions.ClientError:
            time.sleep(0.1)
    raise TimeoutError(f"{key} did not arrive within {timeout:.0f} s")


def wait_ready(data: Path, timeout: float = 300.0) -> None:
    """Until the agent's upload service has made its first scan and reported (an idle, running agent:
    goodput is timed from publication to such an agent, not from the start of its process)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            conn = sqlite3.connect(db_path(data), timeout=30)
            try:
                if conn.execute("SELECT 1 FROM component_state WHERE component = 'upload'").fetchone():
                    return
            finally:
                conn.close()
        except sqlite3.OperationalError:  # not created yet
            pass
        time.sleep(0.2)
    raise TimeoutError(f"the upload service in {data} did not report within {timeout:.0f} s")


def _parts_in(data: Path) -> int:
    conn = sqlite3.connect(db_path(data), timeout=30)
    try:
        return int(conn.execute("SELECT COUNT(*) FROM upload_parts").fetchone()[0])
    except sqlite3.OperationalError:  # not created yet
        return 0
    finally:
        conn.close()


class LinkTrace:
    """Samples the link's upstream byte count every 20 ms: where the link sat idle (before the clip,
    between parts, after the last part) is where an agent loses goodput."""

    def __init__(self, proxy: FaultProxy) -> None:
        self._proxy = proxy
        self._stop = threading.Event()
        self._samples: list[tuple[float, int]] = []
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> LinkTrace:
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.wait(0.02):
            self._samples.append((time.monotonic(), self._proxy.link.bytes_up))

    def idle(self, t0: float, t1: float, rate_bps: float, min_gap_s: float = 0.1) -> dict[str, Any]:
        """Idle link time between t0 and t1 (a wait between two byte counts, less the time the bytes
        counted in it took to cross): the total and the longest gaps (start s, idle s, bytes up then)."""
        self._stop.set()
        self._thread.join(1)
        gaps: list[tuple[float, float, int]] = []
        last_t, last_b = t0, next((b for t, b in self._samples if t >= t0), 0)
        for t, b in [*(s for s in self._samples if t0 <= s[0] <= t1), (t1, -1)]:
            if b == last_b:
                continue
            idle = t - last_t - max(0, b - last_b) * 8 / rate_bps
            if idle >= min_gap_s:
                gaps.append((last_t - t0, idle, last_b))
            last_t, last_b = t, b
        return {
            "link_idle_s": round(sum(g[1] for g in gaps), 2),
            "link_gaps": [[round(s, 2), round(n, 2), b] for s, n, b in sorted(gaps, key=lambda g: -g[1])[:8]],
        }


def agent_case(link: Link, host: str, port: int, work: Path, bucket: str, cut: bool) -> dict[str, Any]:
    """One event with a three-part clip through the agent; with `cut`, the link goes down for
    CUT_DOWN_S a third of the way into part 2. Goodput counts from the record's publication (its files
    written beforehand, as the recorder does) to the clip in S3."""
    s3 = boto3.client("s3", endpoint_url=f"http://{host}:{port}", region_name=REGION, **ADMIN)
    proxy = link.proxy(host, port)
    data = work / f"agent-{link.name}-{'cut' if cut else 'clean'}"
    cfg = default_config(data, proxy.url, bucket)
    svc = UploadService(cfg, SystemClock(), CUT_POLICY if cut else RetryPolicy())
    svc.start()
    trace = LinkTrace(proxy)
    try:
        wait_ready(data)
        # the recorder's part (footage written and fsynced) is done before an event is published:
        # goodput is timed from the record's publication, as the agent sees it
        rec = publish(data, time.time() - 60, os.urandom(link.clip_bytes), snapshot=os.urandom(30_000),
                      publish_record=False)
        trace.start()
        t0 = time.monotonic()
        publish_event(data, rec)
        key = object_prefix(cfg, rec) + "clip.mp4"
        ideal = (link.clip_bytes + 40_000) * 8 / link.rate_bps
        if cut:
            deadline = time.monotonic() + 3 * ideal
            while _parts_in(data) < 1 and time.monotonic() < deadline:
                time.sleep(0.2)
            at_part1 = proxy.link.bytes_up
            while proxy.link.bytes_up < at_part1 + PART // 3 and time.monotonic() < deadline:
                time.sleep(0.05)
            proxy.cut()
            time.sleep(CUT_DOWN_S)  # the scenario: the link is down this long
            proxy.restore()
        done = _wait_object(s3, bucket, key, 4 * ideal + 120)
    finally:
        svc.stop()
        svc.join(30)
        proxy.stop()
    manifest = (data / Path(rec.files[0].path).parent / "manifest.json").stat().st_size
    payload = sum(f.size for f in rec.files) + manifest
    elapsed = done - t0
    return {
        "goodput_ratio": round(payload * 8 / elapsed / link.rate_bps, 3),
        "elapsed_s": round(elapsed, 1),
        "payload_bytes": payload,
        "link_bytes_up": proxy.link.bytes_up,
        "resent_bytes": proxy.link.bytes_up - payload,  # includes HTTP request heads (~1 KB a request)
        "link_down_s": CUT_DOWN_S if cut else 0.0,
        **trace.idle(t0, done, link.rate_bps),  # diagnostics: when the link sat idle (gaps >= 0.1 s)
    }


def baseline_case(link: Link, host: str, port: int, work: Path, bucket: str) -> dict[str, Any]:
    """Plain boto3 upload_file with its defaults on an equal link; given up after 1.25 x the ideal time."""
    proxy = link.proxy(host, port)
    path = work / f"baseline-{link.name}.bin"
    path.write_bytes(os.urandom(link.clip_bytes))
    client = boto3.client("s3", endpoint_url=proxy.url, region_name=REGION, **ADMIN)
    ideal = link.clip_bytes * 8 / link.rate_bps
    result: dict[str, Any] = {}

    def run() -> None:
        t0 = time.monotonic()
        try:
            client.upload_file(str(path), bucket, "baseline.bin")
            result["elapsed_s"] = time.monotonic() - t0
        except Exception as err:  # what a failed baseline says is part of the result
            result["error"] = f"{type(err).__name__}: {err}"[:300]

    t = threading.Thread(target=run, daemon=True)
    t.start()
    t.join(1.25 * ideal)
    out: dict[str, Any] = {"link_bytes_up": proxy.link.bytes_up, "payload_bytes": link.clip_bytes}
    if "elapsed_s" in result:
        out |= {
            "finished": True,
            "elapsed_s": round(result["elapsed_s"], 1),
            "goodput_ratio": round(link.clip_bytes * 8 / result["elapsed_s"] / link.rate_bps, 3),
        }
    else:
        out |= {
            "finished": False,
            "gave_up_after_s": round(1.25 * ideal, 1),
            "goodput_ratio": 0.0,
            "error": result.get("error", "still retrying"),
        }
    proxy.stop()  # a baseline still retrying fails fast from here on
    t.join(30)
    return out


def _run_case(name: tuple[str, str], fn: Any, args: tuple[Any, ...]) -> tuple[tuple[str, str], Any]:
    try:
        return name, fn(*args)
    except Exception as err:
        return name, {"error": f"{type(err).__name__}: {err}"}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def run_all(work: Path) -> dict[str, dict[str, Any]]:
    """Every case of every link at once, each in its own process (its own link and GIL, so the links
    stay accurate) against an S3 server process of their own; {"<link>": {"agent", "agent_cut",
    "baseline"}}."""
    host, port = "127.0.0.1", _free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", host, "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        s3 = boto3.client("s3", endpoint_url=f"http://{host}:{port}", region_name=REGION, **ADMIN)
        deadline = time.monotonic() + 60
        while True:
            try:
                s3.list_buckets()
                break
            except Exception:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        jobs: dict[tuple[str, str], Any] = {}
        for link in LINKS:
            for case in ("agent", "agent_cut", "baseline"):
                bucket = f"slow-{link.name}-{case.replace('_', '-')}-{os.getpid()}"
                s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": REGION})
                if case == "baseline":
                    jobs[link.name, case] = (baseline_case, (link, host, port, work, bucket))
                else:
                    jobs[link.name, case] = (
                        agent_case,
                        (link, host, port, work, bucket, case == "agent_cut"),
                    )
        ctx = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(max_workers=len(jobs), mp_context=ctx) as pool:
            futures = [pool.submit(_run_case, k, fn, a) for k, (fn, a) in jobs.items()]
            results = dict(f.result() for f in futures)
    finally:
        server.terminate()
        server.wait(10)
    return {
        link.name: {case: results[link.name, case] for case in ("agent", "agent_cut", "baseline")}
        for link in LINKS
    }
