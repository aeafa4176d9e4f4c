"""The unit's real upload pipeline (agent.upload UploadService, moto S3 over HTTP) notifying the real
control room over HTTP: both notifications of each event are accepted and stored as one event.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from control_room.db import session_scope
from control_room.models import Event, EventState
from tests.upload.conftest import bucket, make_config, moto_url, publish_events, service, wait_until  # noqa: F401


def test_upload_pipeline_notifications_are_stored(tmp_path, live_server, factory, engine, moto_url: str,  # noqa: F811
                                                   bucket: str, service: Any, publish_events: Any) -> None:  # noqa: F811
    unit = factory.unit("herts-mcu-001")
    records = publish_events(2)
    status = {"url": live_server.url, "token": unit.token}
    service(make_config(tmp_path / "data", moto_url, bucket, status=status))

    def clips_stored() -> list[Event]:
        with session_scope(engine) as s:
            rows = s.scalars(select(Event).where(Event.state == EventState.CLIP_UPLOADED)).all()
        return rows if len(rows) == len(records) else []

    events = {e.event_id: e for e in wait_until(clips_stored, 30, "both events stored with their clips")}
    for rec in records:
        stored = events[rec.event_id]
        assert stored.objects["clip"]["sha256"] == rec.file("clip").sha256
        assert stored.objects["snapshot"]["sha256"] == rec.file("snapshot").sha256
        assert stored.objects["clip"]["key"].startswith("units/herts-mcu-001/")
        assert stored.bucket == bucket and stored.site == "High St north" and stored.clock_synced is True
