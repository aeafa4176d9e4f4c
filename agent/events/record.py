"""Event record building: the files the writer made -> the EventRecord published in the outbox.

Called by agent.events.writer after the clip and snapshots are written (or left out: partial); also
reports the published event in the `motion` component state for status and heartbeats.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from agent import __version__
from agent.clock import Clock, iso_utc
from agent.config import Config
from agent.events.clips import ClipInfo, SegmentLike
from agent.events.outbox import EventFile, EventRecord
from agent.events.tracker import Event
from agent.fsutil import sha256_file
from agent.state import StateStore

CONTENT_TYPES = {"clip": "video/mp4", "snapshot": "image/jpeg", "snapshot_boxes": "image/jpeg"}


def build_record(cfg: Config, data_dir: Path, clock: Clock, ev: Event, clip: ClipInfo | None,
                 files: list[Path], segs: Sequence[SegmentLike], extra: dict[str, Any],
                 partial: bool) -> EventRecord:
    """The record of an event whose `files` (under data_dir) are written and fsynced."""
    entries = [EventFile(role=p.stem, path=p.relative_to(data_dir).as_posix(), size=p.stat().st_size,
                         sha256=sha256_file(p), content_type=CONTENT_TYPES[p.stem]) for p in files]
    synced = bool(segs) and all(bool(getattr(s, "clock_synced", False)) for s in segs)
    return EventRecord(
        event_id=ev.event_id, unit_id=cfg.unit.id, site=cfg.unit.site,
        start=iso_utc(ev.start_wall), end=iso_utc(ev.end_wall),
        clip_start=iso_utc(clip.start if clip else ev.clip_start_wall),
        clip_end=iso_utc(clip.end if clip else ev.clip_end_wall),
        peak_score=round(ev.peak_score, 6), peak_time=iso_utc(ev.peak_wall), boxes=ev.peak_boxes,
        clock_synced=synced, software_version=__version__, created_at=iso_utc(clock.time()),
        files=entries, previous_event_id=ev.previous_event_id, extra=extra, partial=partial,
    )


def report_motion(state: StateStore, ev: Event) -> None:
    """`motion` state: the last event's start and today's count (UTC day)."""
    today = datetime.fromtimestamp(ev.start_wall, UTC).date().isoformat()
    prev = state.read("motion")
    count = 0
    if prev is not None and prev.state.get("day") == today:
        count = int(prev.state.get("events_today") or 0)
    state.report("motion", last_event_at=iso_utc(ev.start_wall), events_today=count + 1, day=today)
