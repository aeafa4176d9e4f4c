"""Request bodies for the unit API tests, as docs/protocol.md shows them."""

from __future__ import annotations

import copy
from typing import Any

HEARTBEAT: dict[str, Any] = {
    "schema": 1,
    "unit_id": "herts-mcu-001",
    "seq": 1234,
    "sent_at": "2026-11-28T13:04:26.123Z",
    "reason": "interval",
    "software_version": "0.1.0",
    "boot_id": "5c7e0d7f",
    "uptime_s": 86400,
    "clock": {"synced": True, "offset_s": 0.012, "source": "chrony"},
    "camera": {"state": "ok", "fps": 10.0, "last_frame_at": "2026-11-28T13:04:26.000Z", "restarts": 0,
               "error": None},
    "recording": {"state": "recording", "segment_seconds": 10, "last_segment_at": "2026-11-28T13:04:20.000Z"},
    "motion": {"last_event_at": "2026-11-28T12:58:01.500Z", "events_today": 12},
    "disk": {"total_bytes": 64_000_000_000, "free_bytes": 20_000_000_000,
             "oldest_footage_at": "2026-10-28T13:00:00Z", "retention_days": 31, "events_lost": 0},
    "uploads": {"pending": 3, "pending_bytes": 5242880, "oldest_pending_age_s": 42, "failed": 0,
                "last_success_at": "2026-11-28T13:03:00Z", "held_by_budget": 0},
    "data": {"period_start": "2026-11-01T00:00:00Z", "used_bytes": 123456789, "budget_bytes": 8000000000},
    "system": {"cpu_temp_c": 51.2, "undervoltage": False, "throttled": False, "throttled_flags": "0x0",
               "load1": 0.4, "mem_total_bytes": 4_000_000_000, "mem_available_bytes": 3_000_000_000},
    "modem": {"signal_percent": 70, "operator": "EE", "technology": "lte", "state": "connected"},
    "gps": {"fix": "3d", "lat": 51.705, "lon": -0.278, "time": "2026-11-28T13:04:25Z"},
    "config_version": "2026-11-20.1",
    "acked": [],
}

SHA = "0123456789abcdef" * 4


def heartbeat(unit_id: str = "herts-mcu-001", **changes: Any) -> dict[str, Any]:
    body = copy.deepcopy(HEARTBEAT)
    body["unit_id"] = unit_id
    body.update(changes)
    return body


def event(unit_id: str = "herts-mcu-001", stamp: str = "20261128T130426.123Z",
          state: str = "snapshot_uploaded", **changes: Any) -> dict[str, Any]:
    event_id = f"{unit_id}-{stamp}"
    prefix = f"units/{unit_id}/2026/11/28/{event_id}"
    objects: dict[str, Any] = {
        "snapshot": {"key": f"{prefix}/snapshot.jpg", "size": 31337, "sha256": SHA},
        "manifest": {"key": f"{prefix}/manifest.json", "size": 900, "sha256": SHA},
    }
    if state == "clip_uploaded":
        objects["clip"] = {"key": f"{prefix}/clip.mp4", "size": 2_500_000, "sha256": SHA}
    body: dict[str, Any] = {
        "schema": 1, "event_id": event_id, "unit_id": unit_id, "site": "High St north",
        "start": "2026-11-28T13:04:26.123Z", "end": "2026-11-28T13:04:40.000Z",
        "clip_start": "2026-11-28T13:04:21.000Z", "clip_end": "2026-11-28T13:04:45.000Z",
        "peak_score": 0.31, "peak_time": "2026-11-28T13:04:30.000Z", "boxes": [[0.1, 0.2, 0.05, 0.1]],
        "clock_synced": True, "previous_event_id": None, "state": state, "bucket": "cctv-footage",
        "objects": objects,
    }
    body.update(changes)
    return body
