"""4G economy: the monthly data budget holds clips (never snapshots), a request passes it, a new
period releases held clips; budget periods follow the reset day.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from agent.clock import ManualClock
from agent.db import connect, db_path
from agent.state import StateStore
from agent.upload.budget import period_start
from agent.upload.intake import object_prefix
from agent.upload.queue import JobState, UploadQueue
from agent.upload.worker import UploadService
from tests.upload.conftest import FAST, make_config, objects, publish, wait_until


@pytest.mark.parametrize(
    ("now", "day", "start"),
    [
        ("2026-11-20T10:00:00", 1, "2026-11-01"),
        ("2026-11-20T10:00:00", 25, "2026-10-25"),
        ("2026-01-03T00:00:00", 5, "2025-12-05"),
        ("2026-03-05T00:00:00", 5, "2026-03-05"),
    ],
)
def test_budget_period_starts_on_the_reset_day(now: str, day: int, start: str) -> None:
    got = period_start(datetime.fromisoformat(now).replace(tzinfo=UTC), day)
    assert got == datetime.fromisoformat(start).replace(tzinfo=UTC)


def state_of(data: Path, event_id: str, role: str) -> str | None:
    row = (
        UploadQueue.open(connect(db_path(data)))
        .conn.execute("SELECT state FROM upload_jobs WHERE event_id = ? AND role = ?", (event_id, role))
        .fetchone()
    )
    return row[0] if row else None


def test_past_the_budget_clips_wait_snapshots_go_and_a_request_or_new_period_releases_them(
    tmp_path: Path, moto_url: str, bucket: str, s3_admin: Any
) -> None:
    data = tmp_path / "data"
    clock = ManualClock(wall=datetime(2026, 11, 20, 12, tzinfo=UTC).timestamp())
    cfg = make_config(data, moto_url, bucket, monthly_budget_mb=0.3, budget_reset_day=1)
    t0 = clock.time() - 3600
    first = publish(data, t0, b"a" * 200_000)
    svc = UploadService(cfg, clock, FAST)
    svc.start()
    try:
        wait_until(lambda: state_of(data, first.event_id, "clip") == "done", 60, "first clip within budget")
        second = publish(data, t0 + 60, b"b" * 200_000)
        third = publish(data, t0 + 120, b"c" * 200_000)
        for rec in (second, third):
            wait_until(
                lambda r=rec: state_of(data, r.event_id, "clip") == JobState.HELD.value, 60, "held clip"
            )
            keys = set(objects(s3_admin, bucket))
            assert object_prefix(cfg, rec) + "snapshot.jpg" in keys  # snapshots always go
            assert object_prefix(cfg, rec) + "clip.mp4" not in keys
        state = StateStore(connect(db_path(data)), clock)
        wait_until(lambda: state.read("upload").state["held_by_budget"] == 2, 60, "held clips in status")
        up = state.read("upload").state
        assert up["budget_bytes"] == 300_000 and up["used_bytes"] > 240_000
        assert up["period_start"] == "2026-11-01T00:00:00.000Z"

        assert svc.request_event(second.event_id)  # a control-room request passes the budget
        wait_until(lambda: state_of(data, second.event_id, "clip") == "done", 60, "requested clip")
        assert state_of(data, third.event_id, "clip") == JobState.HELD.value

        clock.set_wall(datetime(2026, 12, 1, 0, 5, tzinfo=UTC).timestamp())  # a new period
        wait_until(lambda: state_of(data, third.event_id, "clip") == "done", 60, "clip in the new period")
        wait_until(
            lambda: state.read("upload").state["period_start"] == "2026-12-01T00:00:00.000Z", 10, "period"
        )
    finally:
        svc.stop()
        assert svc.join(10)
    body = s3_admin.get_object(Bucket=bucket, Key=object_prefix(cfg, third) + "clip.mp4")["Body"].read()
    assert body == b"c" * 200_000
