"""Event notifications against the real control room (app behind waitress on 127.0.0.1, SQLite):
each uploaded event is stored with its objects, the clip once verified; a repeat changes nothing."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from agent.db import connect, db_path
from agent.upload.intake import object_prefix
from agent.upload.queue import UploadQueue
from tests.upload.conftest import make_config, wait_until

pytest.importorskip("control_room", reason="control room extras not installed")
from control_room import create_app  # noqa: E402
from control_room.config import Settings  # noqa: E402
from control_room.db import get_engine, session_scope  # noqa: E402
from control_room.models import Event  # noqa: E402
from tests.control_room.conftest import Factory, serve_in_thread  # noqa: E402


def stored(engine: Any) -> dict[str, tuple[str, dict[str, Any]]]:
    with session_scope(engine) as s:
        return {e.event_id: (e.state.value, dict(e.objects)) for e in s.scalars(select(Event))}


def test_uploaded_events_reach_the_control_room_once_with_their_objects(
    tmp_path: Path, moto_url: str, bucket: str, service: Any, publish_events: Any
) -> None:
    settings = Settings(
        instance_dir=tmp_path,
        database_url=f"sqlite:///{tmp_path / 'cr.db'}",
        secret_key="test-secret-key-0123456789abcdef",
    )
    app = create_app(settings, migrate=True)
    engine = get_engine(app)
    unit = Factory(engine).unit("herts-mcu-001")
    server = serve_in_thread(app)
    try:
        data = tmp_path / "data"
        status = {"url": f"http://127.0.0.1:{server.port}", "token": unit.token}
        cfg = make_config(data, moto_url, bucket, status=status)
        records = publish_events(2)
        service(cfg)
        wait_until(
            lambda: all(stored(engine).get(r.event_id, ("",))[0] == "clip_uploaded" for r in records),
            20,
            "both events stored as clip_uploaded",
        )
        events = stored(engine)
        for r in records:
            _, objects = events[r.event_id]
            assert objects["clip"]["key"] == object_prefix(cfg, r) + "clip.mp4"
            assert objects["clip"]["sha256"] == r.file("clip").sha256
            assert set(objects) == {"manifest", "snapshot", "clip"}
        q = UploadQueue.open(connect(db_path(data)))  # a repeat (as after a crash) is idempotent
        q.conn.execute("UPDATE upload_jobs SET state = 'pending' WHERE role = 'notify_snapshot'")
        wait_until(
            lambda: (
                q.conn.execute("SELECT COUNT(*) FROM upload_jobs WHERE state != 'done'").fetchone()[0] == 0
            ),
            15,
            "repeated notifications sent",
        )
        with session_scope(engine) as s:
            assert s.scalar(select(func.count()).select_from(Event)) == 2
        assert {k: v[0] for k, v in stored(engine).items()} == {r.event_id: "clip_uploaded" for r in records}
    finally:
        server.stop()
