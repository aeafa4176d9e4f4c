"""Control-room requests for continuous footage (`upload_range`): the segments covering the range
become a high-priority "range" record in the outbox, so they travel the same durable path as events.

The record carries extra {"kind": "range", "priority": "high"}: intake queues it ahead of other work
and past the data budget, without event notifications; a retention hold keeps the segments meanwhile.
"""

from __future__ import annotations

import logging
import sqlite3
from datetime import datetime
from pathlib import Path

from agent import __version__
from agent.clock import Clock, iso_utc
from agent.config import Config
from agent.events.outbox import EventFile, EventRecord, publish_event
from agent.recording.index import Segment, SegmentIndex
from agent.recording.retention import add_hold

log = logging.getLogger(__name__)

HOLD_S = 7 * 86400.0  # keep the segments at least this long while they upload


def range_event_id(unit_id: str, instruction_id: str) -> str:
    return f"{unit_id}-range-{instruction_id.replace(':', '.')}"


def _segment_file(data_dir: Path, index: int, seg: Segment) -> EventFile | None:
    path = seg.path if seg.path.is_absolute() else data_dir / seg.path
    try:
        rel = path.resolve().relative_to(data_dir.resolve())
    except ValueError:
        log.warning("segment %s is outside %s: not uploaded", seg.path, data_dir)
        return None
    return EventFile(f"segment-{index:04d}", str(rel), seg.size, seg.sha256, "video/mp4")


def range_record(
    cfg: Config, clock: Clock, instruction_id: str, start: datetime, end: datetime, segments: list[Segment]
) -> EventRecord:
    files = [f for i, s in enumerate(segments) if (f := _segment_file(cfg.unit.data_dir, i, s))]
    return EventRecord(
        event_id=range_event_id(cfg.unit.id, instruction_id),
        unit_id=cfg.unit.id,
        site=cfg.unit.site,
        start=iso_utc(start.timestamp()),
        end=iso_utc(end.timestamp()),
        clip_start=iso_utc(segments[0].start),
        clip_end=iso_utc(segments[-1].end),
        peak_score=0.0,
        peak_time=iso_utc(start.timestamp()),
        boxes=[],
        clock_synced=all(s.clock_synced for s in segments),
        software_version=__version__,
        created_at=iso_utc(clock.time()),
        files=files,
        extra={"kind": "range", "priority": "high", "instruction_id": instruction_id},
    )


def queue_range(
    cfg: Config, clock: Clock, conn: sqlite3.Connection, instruction_id: str, start: datetime, end: datetime
) -> bool:
    """Publish the range record; True once it is durably queued (or there is nothing to send)."""
    segments = SegmentIndex(conn).covering(start.timestamp(), end.timestamp())
    if not segments:
        log.warning(
            "upload_range %s: no footage on this unit covers %s .. %s",
            instruction_id,
            iso_utc(start.timestamp()),
            iso_utc(end.timestamp()),
        )
        return True
    record = range_record(cfg, clock, instruction_id, start, end, segments)
    if not record.files:
        return True
    add_hold(
        conn,
        segments[0].start,
        segments[-1].end,
        f"upload_range {instruction_id}",
        expires=clock.time() + HOLD_S,
    )
    publish_event(cfg.unit.data_dir, record)
    log.info(
        "upload_range %s: %d segment(s), %d bytes queued at high priority",
        instruction_id,
        len(record.files),
        sum(f.size for f in record.files),
    )
    return True
