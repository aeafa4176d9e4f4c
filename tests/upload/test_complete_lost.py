"""A multipart upload whose Complete answer is lost (link cut, kill -9 before the job is marked done) is
recognised as already in the bucket on the retry: the clip is not sent a second time over 4G."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path
from typing import Any

from agent.clock import SystemClock
from agent.db import connect, db_path
from agent.upload import multipart, s3
from agent.upload.budget import Meter, TokenBucket
from agent.upload.link import LinkRate, LinkWatch
from agent.upload.queue import JobKind, Lane, NewJob, UploadQueue
from tests.upload.conftest import UNIT, make_config, publish

MIB = 1024 * 1024


def test_a_lost_complete_answer_does_not_resend_the_clip(
    tmp_path: Path, moto_url: str, bucket: str, s3_admin: Any
) -> None:
    data = tmp_path / "data"
    cfg = make_config(data, moto_url, bucket, part_size_mb=5, multipart_threshold_mb=8)
    rec = publish(data, time.time() - 600, os.urandom(12 * MIB))
    clip = rec.file("clip")
    assert clip is not None
    q = UploadQueue.open(connect(db_path(data)))
    key = f"units/{UNIT}/{rec.event_id}/clip.mp4"
    q.add_event(rec.event_id, [NewJob(JobKind.CLIP, "clip", Lane.BULK, clip.path, key, clip.size, clip.sha256,
                                      "video/mp4")], time.time(), {})
    job = q.next_job(Lane.BULK, time.time(), 7200)
    assert job is not None
    t = s3.S3Target(s3.make_client(cfg.upload, s3.ClockOffset(SystemClock())), bucket,
                    TokenBucket(0, SystemClock(), threading.Event()), Meter(), 5 * MIB, 8 * MIB,
                    LinkWatch(SystemClock(), threading.Event(), LinkRate()), 5.0)
    multipart.put_multipart(t, job, data / clip.path, q, UNIT)  # completed; its answer never reaches the lane
    assert t.meter.take_all() == clip.size

    written = multipart.put_multipart(t, q.get(job.id), data / clip.path, q, UNIT)  # the retry
    assert t.meter.take_all() == 0, "the whole clip was sent again"
    assert s3.verify(t, q.get(job.id), written, [True]) == "head"
    assert s3_admin.get_object(Bucket=bucket, Key=key)["Body"].read() == (data / clip.path).read_bytes()
    uploads = s3_admin.list_multipart_uploads(Bucket=bucket).get("Uploads", [])
    assert not uploads, "a new multipart upload was started for a clip already in the bucket"
