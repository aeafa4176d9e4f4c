"""`cctv-agent uploads`: the upload queue for a field engineer on the unit (read from agent.db).

Shows pending, in progress, held, failed and rejected work with bytes and ages; `--request EVENT`
lets the event jump the queue and pass the data budget (what a control-room request does);
`--drain` uploads everything queued (agent stopped) with a progress bar, then exits.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from agent.clock import SystemClock, iso_utc
from agent.config import Config, load_config
from agent.db import connect, db_path
from agent.errors import InputError
from agent.progress import Progress
from agent.upload.budget import DataBudget
from agent.upload.drain import drain
from agent.upload.queue import UploadQueue
from agent.upload.stats import open_jobs, queue_stats, rejected_events


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", required=True, help="unit config (TOML)")
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    parser.add_argument("--request", metavar="EVENT_ID", help="upload this event first, past the data budget")
    parser.add_argument("--drain", action="store_true",
                        help="upload everything queued now, then exit (stop the agent first); "
                             "exit 1 if anything is left")
    parser.add_argument("--timeout", type=float, default=3600.0, metavar="S",
                        help="--drain gives up after this many seconds (default 3600)")


def queue_report(queue: UploadQueue, budget: DataBudget, now: float) -> dict[str, Any]:
    st = queue_stats(queue.conn)
    jobs = [
        {
            "event_id": r["event_id"],
            "file": r["role"],
            "state": r["state"],
            "bytes": r["size"],
            "parts_done": r["parts"],
            "attempts": r["attempts"],
            "age_s": round(now - r["created_at"], 1),
            "error": r["last_error"],
        }
        for r in open_jobs(queue.conn)
    ]
    rejected = [{"event_id": r["event_id"], "error": r["error"]} for r in rejected_events(queue.conn)]
    return {
        "pending": st.pending,
        "in_progress": st.active,
        "held_by_budget": st.held,
        "failed": st.failed,
        "rejected_events": st.rejected_events,
        "pending_bytes": st.pending_bytes,
        "oldest_pending_age_s": round(now - st.oldest_pending_at, 1) if st.oldest_pending_at else None,
        "last_success_at": iso_utc(st.last_success_at) if st.last_success_at else None,
        "data_used_bytes": budget.used(queue),
        "data_budget_bytes": budget.budget_bytes,
        "period_start": budget.period(),
        "jobs": jobs,
        "rejected": rejected,
    }


def _print_text(rep: dict[str, Any]) -> None:
    print(
        f"pending {rep['pending']}  in progress {rep['in_progress']}  "
        f"held by budget {rep['held_by_budget']}  failed {rep['failed']}  "
        f"rejected events {rep['rejected_events']}"
    )
    print(
        f"pending bytes {rep['pending_bytes']}  oldest pending {rep['oldest_pending_age_s']} s  "
        f"last success {rep['last_success_at']}"
    )
    print(
        f"data used {rep['data_used_bytes']} of {rep['data_budget_bytes'] or 'unlimited'} bytes "
        f"since {rep['period_start']}"
    )
    for j in rep["jobs"]:
        err = f"  {j['error']}" if j["error"] else ""
        print(
            f"  {j['state']:<8} {j['event_id']}  {j['file']:<16} {j['bytes']:>11} B  "
            f"parts {j['parts_done']}  age {j['age_s']} s{err}"
        )
    for r in rep["rejected"]:
        print(f"  rejected {r['event_id']}  {r['error']}")


def main(args: argparse.Namespace) -> int:
    cfg = load_config(args.config)
    if args.drain:
        return _drain(cfg, args.timeout)
    path = db_path(cfg.unit.data_dir)
    if not path.exists():
        raise InputError(f"{path}: no agent database (has the agent run on this unit?)")
    clock = SystemClock()
    conn = connect(path)
    try:
        queue = UploadQueue.open(conn)
        if args.request and not queue.request_event(args.request):
            raise InputError(f"no queued event {args.request!r}")
        rep = queue_report(
            queue, DataBudget(cfg.upload.monthly_budget_mb, cfg.upload.budget_reset_day, clock), clock.time()
        )
    finally:
        conn.close()
    if args.json:
        json.dump(rep, sys.stdout, indent=1)
        print()
    else:
        _print_text(rep)
    return 0


def _drain(cfg: Config, timeout_s: float) -> int:
    if timeout_s <= 0:
        raise InputError("--timeout must be positive")
    if not cfg.upload.enabled:
        raise InputError("upload.enabled is false in this config: nothing would be uploaded")
    progress = Progress(0, f"draining {cfg.unit.id}", unit="B")
    result = drain(cfg, SystemClock(), timeout_s, progress)
    progress.close(result.summary(), always=True)
    return 0 if result.drained and result.stats.failed == 0 and result.stats.held == 0 else 1
