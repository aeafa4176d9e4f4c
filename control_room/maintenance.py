"""Housekeeping run by `cctv-control-room prune` (daily, from a timer): old chart samples, long
acknowledged instructions, old failed log-ins, stale heartbeats and ended sessions are deleted in
small batches so heartbeats never wait long for the lock.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import Engine, delete, select

from control_room.db import session_scope
from control_room.models import HeartbeatSample, Instruction, LoginFailure, StaleHeartbeat, UserSession

BATCH = 5000


def prune(engine: Engine, now: datetime, sample_days: int, instruction_days: int = 30) -> dict[str, int]:
    """Delete samples older than `sample_days` and instructions acked over `instruction_days` ago."""
    samples = _delete_batches(engine, HeartbeatSample, HeartbeatSample.at < now - timedelta(days=sample_days))
    acked = _delete_batches(engine, Instruction,
                            Instruction.acked_at < now - timedelta(days=instruction_days))
    old = now - timedelta(days=sample_days)  # kept as long as the charts: failed log-ins, late heartbeats
    failures = _delete_batches(engine, LoginFailure, LoginFailure.at < old)
    stale = _delete_batches(engine, StaleHeartbeat, StaleHeartbeat.received_at < old)
    ended = _delete_batches(engine, UserSession, UserSession.ended_at < old)
    return {"samples": samples, "instructions": acked, "login_failures": failures, "stale_heartbeats": stale,
            "sessions": ended}


def _delete_batches(engine: Engine, model: type, condition: object) -> int:
    total = 0
    while True:
        with session_scope(engine) as s:
            ids = s.scalars(select(model.id).where(condition).limit(BATCH)).all()  # type: ignore[attr-defined]
            if ids:
                s.execute(delete(model).where(model.id.in_(ids)))  # type: ignore[attr-defined]
        total += len(ids)
        if len(ids) < BATCH:
            return total
