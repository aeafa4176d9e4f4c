"""`cctv-agent status --config FILE [--json]`: the unit's current state, read on the unit itself.

Reads the component states in agent.db (read-only, so it is safe while the agent runs) and the
probes, builds the same document as a heartbeat, and prints it as a table or JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import time
from pathlib import Path
from typing import Any

from agent.clock import SystemClock
from agent.config import Config, load_config
from agent.db import db_path
from agent.errors import InputError
from agent.events.ledger import summary_from_counters
from agent.state import ComponentState, StateStore
from agent.status.heartbeat import build_payload
from agent.status.probes import Probes

STALE_S = 120.0  # a component silent this long is flagged: the agent may be stopped or hung


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", type=Path, required=True, help="unit config (TOML)")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")


def main(args: argparse.Namespace) -> int:
    cfg = load_config(args.config)
    report = collect(cfg, Probes.from_config(cfg.status.gpsd, cfg.status.modem, timeout_s=2.0))
    print(json.dumps(report, indent=2) if args.json else render(report))
    return 0


def read_state(db_file: Path) -> tuple[dict[str, ComponentState], dict[str, int]]:
    """Component states and counters from agent.db, opened read-only; empty if there is none yet."""
    if not db_file.exists():
        return {}, {}
    try:
        conn = sqlite3.connect(f"file:{db_file}?mode=ro", uri=True, timeout=5.0)
    except sqlite3.Error as err:
        raise InputError(f"{db_file}: cannot open the agent database: {err}") from None
    try:
        store = StateStore(conn, SystemClock())
        return store.read_all(), store.counters()
    except sqlite3.Error as err:
        raise InputError(f"{db_file}: cannot read the agent database: {err}") from None
    finally:
        conn.close()
        _keep_owner(db_file)


def _keep_owner(db_file: Path) -> None:
    """Run as root, SQLite may have created -wal/-shm files the agent's user could not open: hand
    them back to the database's owner."""
    if os.geteuid() != 0:
        return
    owner = db_file.stat()
    for suffix in ("-wal", "-shm"):
        side = db_file.with_name(db_file.name + suffix)
        try:
            if side.stat().st_uid != owner.st_uid:
                os.chown(side, owner.st_uid, owner.st_gid)
        except OSError:
            pass


def collect(cfg: Config, probes: Probes) -> dict[str, Any]:
    data_dir = cfg.unit.data_dir if cfg.unit.data_dir.is_absolute() else Path.cwd() / cfg.unit.data_dir
    cfg = cfg.model_copy(update={"unit": cfg.unit.model_copy(update={"data_dir": data_dir})})
    states, counters = read_state(db_path(data_dir))
    agent = states.get("status")
    report = build_payload(cfg, states, counters, probes, SystemClock(), seq=_seq(agent), reason="status",
                          acked=[])
    now = time.monotonic()
    report["events"] = summary_from_counters(counters).__dict__
    report["updated_s_ago"] = {name: round(now - row.updated_mono, 1) for name, row in sorted(states.items())
                               if name != "status"}
    report["heartbeat"] = None if agent is None else {
        k: agent.state.get(k) for k in ("last_sent_at", "last_attempt_at", "failures", "last_error",
                                        "revoked", "config_version_expected", "server_offset_s")
    } | {"mine": cfg.status.config_version or None}
    return report


def _seq(row: ComponentState | None) -> int:
    return int(row.state.get("seq") or 0) if row is not None else 0


def _bytes(n: Any) -> str:
    if not isinstance(n, int | float):
        return "?"
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if abs(n) < 1000 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return "?"


def _v(value: Any, default: str = "-") -> str:
    return default if value is None else str(value)


def _clock(c: dict) -> str:
    state = "synced" if c["synced"] else "NOT SYNCED"
    return f"{state} ({_v(c['source'])}, offset {_v(c['offset_s'])} s)"


def _camera(c: dict) -> str:
    text = (f"{c['state']}, {_v(c['fps'])} fps, last frame {_v(c['last_frame_at'])}, "
            f"restarts {_v(c['restarts'])}")
    return text + (f", error: {c['error']}" if c["error"] else "")


def _recording(r: dict) -> str:
    text = f"{r['state']}, {_v(r['segment_seconds'])} s segments, last {_v(r['last_segment_at'])}"
    gap = r.get("last_gap")
    if r.get("gaps"):
        text += f"; {r['gaps']} gap(s) in the footage"
    if gap:
        text += f", last {_v(gap['start'])} .. {_v(gap['end'])} ({str(gap['reason']).replace('_', ' ')})"
    return text


def _disk(d: dict) -> str:
    reasons = ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in (d.get("events_lost_reasons") or {}).items()
                        if v)
    return (f"{_bytes(d['free_bytes'])} free of {_bytes(d['total_bytes'])}, oldest footage "
            f"{_v(d['oldest_footage_at'])}, keep {_v(d['retention_days'])} days, "
            f"events lost {d['events_lost']}" + (f" ({reasons})" if reasons else ""))


def _events(e: dict) -> str:
    return (f"{e['detected']} detected: {e['published']} published, {e['partial']} published partial "
            f"(no clip), {e['lost']} lost")


def _uploads(u: dict) -> str:
    return (f"{_v(u['pending'])} pending ({_bytes(u['pending_bytes'])}), "
            f"oldest {_v(u['oldest_pending_age_s'])} s, failed {_v(u['failed'])}, "
            f"held by budget {_v(u['held_by_budget'])}, "
            f"last success {_v(u['last_success_at'])}")


def _system(s: dict) -> str:
    power = "UNDER-VOLTAGE" if s["undervoltage"] else ("ok" if s["undervoltage"] is False else "?")
    return (f"cpu {_v(s['cpu_temp_c'])} C, power {power}, throttled {_v(s['throttled'])} "
            f"({_v(s['throttled_flags'])}), load {_v(s['load1'])}, memory "
            f"{_bytes(s['mem_available_bytes'])} free of {_bytes(s['mem_total_bytes'])}")


def _heartbeat(h: dict) -> str:
    revoked = "REVOKED by the control room; " if h["revoked"] else ""
    expected = h.get("config_version_expected")
    mismatch = f"; control room expects config {expected}" if expected and expected != h.get("mine") else ""
    return (f"{revoked}last sent {_v(h['last_sent_at'])}, failures {_v(h['failures'], '0')}, "
            f"last error {_v(h['last_error'])}{mismatch}")


# table line -> (report key, formatter, text when the block is null)
LINES: list[tuple[str, str, Any, str]] = [
    ("clock", "clock", _clock, "unknown"),
    ("camera", "camera", _camera, "no report"),
    ("recording", "recording", _recording, "no report"),
    ("motion", "motion", lambda m: f"last event {_v(m['last_event_at'])}, {_v(m['events_today'])} today",
     "no events yet"),
    ("disk", "disk", _disk, "?"),
    ("events", "events", _events, "?"),
    ("uploads", "uploads", _uploads, "no report (disabled or not started)"),
    ("data", "data", lambda d: f"{_bytes(d['used_bytes'])} used of {_bytes(d['budget_bytes'])} "
                               f"since {_v(d['period_start'])}", "?"),
    ("system", "system", _system, "?"),
    ("modem", "modem", lambda m: f"{_v(m['operator'])} {_v(m['technology'])}, "
                                 f"signal {_v(m['signal_percent'])}%, {_v(m['state'])}", "none"),
    ("gps", "gps", lambda g: f"fix {g['fix']}, {_v(g['lat'])}, {_v(g['lon'])} at {_v(g['time'])}", "none"),
    ("heartbeat", "heartbeat", _heartbeat, "never sent"),
]


def render(r: dict[str, Any]) -> str:
    """The report as an aligned two-column table, one line per part of the unit."""
    rows = [("unit", f"{r['unit_id']}  software {r['software_version']}, up {_v(r['uptime_s'])} s, "
                     f"boot {_v(r['boot_id'])[:8]}, config {_v(r['config_version'])}")]
    rows += [(name, absent if r[key] is None else fmt(r[key])) for name, key, fmt, absent in LINES]
    stale = [f"{k} ({v:.0f} s)" for k, v in r["updated_s_ago"].items() if v > STALE_S or v < 0]
    if stale:
        rows.append(("STALE", "no recent report from " + ", ".join(stale) + ": is the agent running?"))
    width = max(len(k) for k, _ in rows)
    return "\n".join(f"{k.ljust(width)}  {v}" for k, v in rows)
