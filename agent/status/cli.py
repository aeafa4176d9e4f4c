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

from agent.clock import SystemClock, iso_utc
from agent.config import Config, load_config
from agent.db import db_path
from agent.errors import InputError
from agent.events.ledger import summary_from_counters
from agent.recording.index import Segment, SegmentIndex
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


def read_state(db_file: Path) -> tuple[dict[str, ComponentState], dict[str, int], Segment | None]:
    """Component states, counters and the latest segment from agent.db, opened read-only; empty if
    there is none yet."""
    if not db_file.exists():
        return {}, {}, None
    try:
        conn = sqlite3.connect(f"file:{db_file}?mode=ro", uri=True, timeout=5.0)
        conn.row_factory = sqlite3.Row
    except sqlite3.Error as err:
        raise InputError(f"{db_file}: cannot open the agent database: {err}") from None
    try:
        store = StateStore(conn, SystemClock())
        states, counters = store.read_all(), store.counters()
        try:
            latest = SegmentIndex(conn).latest()
        except sqlite3.OperationalError:  # no recording yet: the table is not there (read-only)
            latest = None
        return states, counters, latest
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
    states, counters, latest = read_state(db_path(data_dir))
    agent = states.get("status")
    report = build_payload(cfg, states, counters, probes, SystemClock(), seq=_seq(agent), reason="status",
                          acked=[])
    report["agent"] = agent_block(states.get("agent"), states, probes.boot_id())
    if report["clock"] is None and latest is not None:  # no probe answers: what the agent last knew
        report["clock"] = {"synced": latest.clock_synced, "offset_s": None, "source": "last segment",
                           "as_of": iso_utc(latest.end)}
    now = time.monotonic()
    report["events"] = summary_from_counters(counters).__dict__
    report["updated_s_ago"] = {name: round(now - row.updated_mono, 1) for name, row in sorted(states.items())
                               if name not in ("status", "agent", "gaps")}  # written on events only
    report["heartbeat"] = None if agent is None else {
        k: agent.state.get(k) for k in ("last_sent_at", "last_attempt_at", "failures", "last_error",
                                        "revoked", "config_version_expected", "server_offset_s")
    } | {"mine": cfg.status.config_version or None}
    return report


def _pid_running(pid: Any) -> bool:
    if not isinstance(pid, int) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, another user's
        pass
    try:  # a reused pid: is it the agent?
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return True
    return any(arg == b"agent.cli" or arg.endswith(b"cctv-agent") for arg in cmdline.split(b"\0"))


def agent_block(row: ComponentState | None, states: dict[str, ComponentState], boot: str | None
                ) -> dict[str, Any]:
    """Is the agent running? From its `agent` row (runner.py): pid and boot, and a clean stop."""
    last = max((r.updated_at for r in states.values()), default=None)
    seen = iso_utc(last) if last is not None else None
    if row is None:
        return {"state": "never started", "pid": None, "since": None, "last_report_at": seen}
    s = row.state
    if s.get("state") == "stopped":
        return {"state": "stopped", "pid": None, "since": _iso(s.get("stopped_at")), "last_report_at": seen}
    if (not boot or s.get("boot_id") == boot) and _pid_running(s.get("pid")):
        return {"state": "running", "pid": s.get("pid"), "since": _iso(s.get("started_at")),
                "last_report_at": seen}
    return {"state": "dead", "pid": None, "since": _iso(s.get("started_at")), "last_report_at": seen}


def _iso(value: Any) -> str | None:
    return iso_utc(float(value)) if isinstance(value, int | float) else None


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
    state = "synced" if c["synced"] else ("unknown" if c["synced"] is None else "NOT SYNCED")
    as_of = f", as of {c['as_of']}" if c.get("as_of") else ""
    return f"{state} ({_v(c['source'])}, offset {_v(c['offset_s'])} s{as_of})"


def _agent(a: dict) -> str:
    if a["state"] == "running":
        return f"running (pid {a['pid']}) since {_v(a['since'])}"
    if a["state"] == "stopped":
        return f"STOPPED at {_v(a['since'])} (a clean stop); last report {_v(a['last_report_at'])}"
    if a["state"] == "dead":
        return (f"NOT RUNNING: it stopped without shutting down (kill -9, a crash or a power cut); "
                f"started {_v(a['since'])}, last report {_v(a['last_report_at'])}")
    return "never started on this unit"


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
    rows = [("unit", f"{r['unit_id']}  software {r['software_version']}, host up {_v(r['uptime_s'])} s, "
                     f"boot {_v(r['boot_id'])[:8]}, config {_v(r['config_version'])}"),
            ("agent", _agent(r["agent"]))]
    rows += [(name, absent if r[key] is None else fmt(r[key])) for name, key, fmt, absent in LINES]
    stale = [f"{k} ({v:.0f} s)" for k, v in r["updated_s_ago"].items() if v > STALE_S or v < 0]
    if stale and r["agent"]["state"] == "running":
        rows.append(("STALE", "no recent report from " + ", ".join(stale) + ": is the agent running?"))
    width = max(len(k) for k, _ in rows)
    return "\n".join(f"{k.ljust(width)}  {v}" for k, v in rows)
