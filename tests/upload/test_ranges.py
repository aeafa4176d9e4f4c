"""upload_range: the control room asks for continuous footage; the covering segments go up at high
priority, past the data budget, through the same durable outbox path, held from retention meanwhile."""

from __future__ import annotations

import hashlib
import os
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from agent.db import connect, db_path
from agent.events.outbox import read_event
from agent.recording.index import SegmentIndex
from agent.status.instructions import UploadRange
from agent.upload.intake import object_prefix
from agent.upload.manifest import verify_manifest
from agent.upload.queue import JobState, UploadQueue
from agent.upload.ranges import range_event_id
from tests.upload.conftest import make_config, objects, publish, wait_until


def add_segments(data: Path, start: float, n: int, seconds: float = 10.0) -> list[Any]:
    index = SegmentIndex(connect(db_path(data)))
    segs = []
    for i in range(n):
        t = start + i * seconds
        path = data / "segments" / f"herts-mcu-001_{datetime.fromtimestamp(t, UTC):%Y%m%dT%H%M%S}.000Z.mp4"
        path.parent.mkdir(parents=True, exist_ok=True)
        body = os.urandom(150_000)
        path.write_bytes(body)
        segs.append(index.add(path, t, t + seconds, 100, len(body), hashlib.sha256(body).hexdigest(), True))
    return segs


def test_a_requested_range_uploads_its_segments_first_and_past_the_budget(
    tmp_path: Path, moto_url: str, bucket: str, s3_admin: Any, service: Any
) -> None:
    data = tmp_path / "data"
    t0 = time.time() - 3600
    segs = add_segments(data, t0, 6)
    cfg = make_config(data, moto_url, bucket, monthly_budget_mb=0.1)
    event = publish(data, t0 + 5, os.urandom(300_000))  # its clip is past the budget: held
    svc = service(cfg)
    q = UploadQueue.open(connect(db_path(data)))

    def state(eid: str, role: str) -> str | None:
        row = q.conn.execute("SELECT state FROM upload_jobs WHERE event_id = ? AND role = ?", (eid, role))
        return (row.fetchone() or [None])[0]

    wait_until(lambda: state(event.event_id, "clip") == JobState.HELD.value, 15, "the event clip held")
    start, end = datetime.fromtimestamp(t0 + 12, UTC), datetime.fromtimestamp(t0 + 38, UTC)
    assert svc.on_instruction(UploadRange(id="ins-42", type="upload_range", start=start, end=end))
    rid = range_event_id("herts-mcu-001", "ins-42")
    wait_until(lambda: q.known_event(rid) and q.known_event(rid).value == "complete", 20, "range uploaded")
    rec_prefix = object_prefix(cfg, read_event(data / "outbox" / f"{rid}.json"))
    got = {k.removeprefix(rec_prefix) for k in objects(s3_admin, bucket, rec_prefix)}
    assert got == {"manifest.json"} | {s.path.name for s in segs[1:4]}  # [t0+12, t0+38] covers segments 1-3
    for s in segs[1:4]:
        body = s3_admin.get_object(Bucket=bucket, Key=rec_prefix + s.path.name)["Body"].read()
        assert body == s.path.read_bytes()
    doc = verify_manifest(s3_admin.get_object(Bucket=bucket, Key=rec_prefix + "manifest.json")["Body"].read())
    assert [f["name"] for f in doc["files"]] == [s.path.name for s in segs[1:4]]
    assert state(event.event_id, "clip") == JobState.HELD.value  # the budget still holds ordinary clips
    holds = q.conn.execute('SELECT start, "end", reason FROM holds').fetchall()
    assert [(h[0], h[1]) for h in holds] == [(segs[1].start, segs[3].end)] and "ins-42" in holds[0][2]
    assert svc.on_instruction(
        UploadRange(
            id="ins-43",
            type="upload_range",
            start=datetime.fromtimestamp(t0 - 900, UTC),
            end=datetime.fromtimestamp(t0 - 600, UTC),
        )
    )  # nothing recorded then: acknowledged


def test_two_ranges_over_the_same_recordings_folder_each_keep_their_own_manifest(
    tmp_path: Path, moto_url: str, bucket: str, s3_admin: Any, service: Any
) -> None:
    """A second request for the same afternoon must not overwrite the first one's manifest (it lived
    beside the segments): the first manifest was then refused as altered and never uploaded."""
    from agent.clock import SystemClock
    from agent.upload.manifest import verify_chain
    from agent.upload.ranges import queue_range

    data = tmp_path / "data"
    t0 = time.time() - 3600
    add_segments(data, t0, 6)
    cfg = make_config(data, moto_url, bucket)
    conn = connect(db_path(data))
    for ins, (a, b) in (("ins-1", (12, 38)), ("ins-2", (22, 58))):
        start, end = datetime.fromtimestamp(t0 + a, UTC), datetime.fromtimestamp(t0 + b, UTC)
        assert queue_range(cfg, SystemClock(), conn, ins, start, end)
    service(cfg)
    q = UploadQueue.open(connect(db_path(data)))
    rids = [range_event_id("herts-mcu-001", i) for i in ("ins-1", "ins-2")]

    def settled() -> bool:
        rows = q.conn.execute("SELECT state FROM upload_jobs").fetchall()
        return len(rows) == 9 and all(r[0] in ("done", "missing", "refused") for r in rows)  # 3+4 segments

    wait_until(settled, 20, "both ranges settled")
    assert [q.known_event(r).value for r in rids] == ["complete", "complete"]  # type: ignore[union-attr]
    raws = []
    for rid in rids:
        prefix = object_prefix(cfg, read_event(data / "outbox" / f"{rid}.json"))
        raws.append(s3_admin.get_object(Bucket=bucket, Key=prefix + "manifest.json")["Body"].read())
    assert [d["event_id"] for d in verify_chain(raws)] == rids
    assert not list((data / "segments").glob("manifest.json"))
