"""Heartbeat documents for tests and benchmarks/heartbeat.py: typical component states on a Pi,
and every field at its realistic maximum (the 2 KB budget is checked against the latter)."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

from agent.clock import ManualClock
from agent.state import StateStore
from agent.status.heartbeat import build_payload
from agent.status.probes import Probes
from tests.status.conftest import FIXTURES, RecordedRunner, make_config


def store_with(clock: ManualClock, rows: dict[str, dict]) -> StateStore:
    store = StateStore(sqlite3.connect(":memory:", isolation_level=None), clock)
    for component, fields in rows.items():
        store.report(component, **fields)
    return store


def typical_rows(t: float) -> dict[str, dict]:
    return {
        "camera": {"state": "ok", "fps": 10.0, "last_frame_at": t, "restarts": 1, "error": None},
        "recording": {"state": "recording", "segment_seconds": 10, "last_segment_at": t - 3},
        "retention": {"oldest_footage_at": t - 30 * 86400, "free_bytes": 5 * 10**9,
                      "total_bytes": 32 * 10**9, "deleted_segments": 120},
        "motion": {"last_event_at": "2026-01-01T00:00:00+00:00", "events_today": 12},
        "upload": {"alive_at": t, "pending": 3, "pending_bytes": 5242880, "oldest_pending_age_s": 42,
                   "failed": 0, "last_success_at": t - 60, "held_by_budget": 0, "used_bytes": 123456789,
                   "budget_bytes": 8 * 10**9, "period_start": "2026-01-01T00:00:00Z"},
        "clock": {"synced": True, "offset_s": 0.01, "source": "agent"},
    }


def pi_probes(pi_runner: RecordedRunner) -> Probes:
    return Probes(root=FIXTURES / "pi4", run=pi_runner, gpsd=None)


def maximal_payload(tmp_path: Path) -> dict[str, Any]:
    """A heartbeat with every field at its realistic maximum: longest unit id and config version,
    long camera error, 44-bit byte counts, long operator name, five access technologies, 10 ids to ack."""
    clock = ManualClock()
    long_id = "herts-" + "x" * 57  # the longest unit id the config accepts (63 characters)
    cfg = make_config(tmp_path, unit={"id": long_id}, status={"config_version": "v" * 64})
    t = clock.time()
    rows = typical_rows(t)
    rows["camera"].update(state="reopening", fps=59.999999, restarts=999999,
                          error="SourceError: " + "picamera2 timed out waiting for a frame " * 10)
    rows["motion"]["events_today"] = 99999
    rows["retention"].update(free_bytes=2**44, total_bytes=2**44)
    rows["upload"].update(pending=999999, pending_bytes=2**44, oldest_pending_age_s=31 * 86400,
                          failed=999999, held_by_budget=999999, used_bytes=2**44, budget_bytes=2**44)
    rows["clock"].update(offset_s=-123456.123456789)
    store = store_with(clock, rows)
    store.increment("events_lost", 10**9)

    class MaxProbes(Probes):
        def disk(self, data_dir: Path) -> dict[str, int]:
            return {"total_bytes": 2**44, "free_bytes": 2**44}

    runner = RecordedRunner({
        ("mmcli", "-J", "-L"): (FIXTURES / "mmcli/list.json").read_text(),
        ("mmcli", "-J", "-m", "0"): (FIXTURES / "mmcli/modem0.json").read_text()
        .replace('"EE"', json.dumps("Vodafone UK Roaming Partner Network Extra Long"))
        .replace('["lte"]', '["gsm", "umts", "hspa-plus", "lte", "5gnr"]'),
    })
    probes = MaxProbes(root=FIXTURES / "pi4", run=runner, gpsd=None)
    probes.gps = lambda: {"fix": "3d", "lat": -89.123456, "lon": -179.123456,  # type: ignore[method-assign]
                          "time": "2026-11-28T13:04:26.000Z"}
    acked = [f"{i}-" + "i" * 62 for i in range(10)]
    payload = build_payload(cfg, store.read_all(), store.counters(), probes, clock,
                            seq=2**40, reason="change", acked=acked)
    return payload
