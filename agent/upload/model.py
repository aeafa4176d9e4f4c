"""What the upload queue holds (queue.py stores it in agent.db): job states, kinds, lanes and priorities
as Enums stored as text, and the job, new-job and part records the lanes pass around.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum, StrEnum


class JobState(StrEnum):
    PENDING = "pending"  # waiting for its turn (or for the link)
    ACTIVE = "active"  # being uploaded now
    HELD = "held"  # a clip past the monthly data budget: kept locally until next period or a request
    REFUSED = "refused"  # definitive refusal (403, 400, bad bucket): logged loudly, retried slowly
    MISSING = "missing"  # the local file vanished, is unreadable or differs from its record
    DONE = "done"  # in the bucket and verified (or, for a notification, acknowledged)


class JobKind(StrEnum):
    MANIFEST = "manifest"
    FILE = "file"  # snapshot, snapshot_boxes, any small file of the event
    CLIP = "clip"
    NOTIFY = "notify"  # event notification to the control room


class EventState(StrEnum):
    QUEUED = "queued"
    COMPLETE = "complete"  # every job done
    REJECTED = "rejected"  # corrupt outbox record: nothing to upload until it is fixed


class Lane(StrEnum):
    FAST = "fast"  # manifest, snapshots, notifications: small, never held by the budget
    BULK = "bulk"  # clips


class Priority(IntEnum):
    NORMAL = 0
    HIGH = 10  # a control-room request: jumps the queue and passes the data budget


# Stages order an event's jobs: metadata and snapshot, then the first notification, the clip, the last.
STAGE = {"manifest": 0, "file": 0, "notify_snapshot": 1, "clip": 2, "notify_clip": 3}
RETRYABLE = (JobState.PENDING, JobState.REFUSED, JobState.MISSING)
NOT_BLOCKING = (JobState.DONE.value, JobState.MISSING.value)


@dataclass(frozen=True)
class Job:
    id: int
    event_id: str
    kind: JobKind
    role: str
    lane: Lane
    stage: int
    path: str | None
    key: str | None
    size: int
    sha256: str | None
    content_type: str | None
    state: JobState
    attempts: int
    upload_id: str | None
    priority: int
    budget_override: bool
    part_size: int | None  # of its multipart upload, chosen when the upload was created


@dataclass(frozen=True)
class NewJob:
    kind: JobKind
    role: str
    lane: Lane
    path: str | None = None
    key: str | None = None
    size: int = 0
    sha256: str | None = None
    content_type: str | None = None

    @property
    def stage(self) -> int:
        return STAGE[self.role] if self.role in STAGE else STAGE[self.kind.value]


@dataclass(frozen=True)
class Part:
    number: int
    size: int
    etag: str
    checksum_sha256: str


@dataclass(frozen=True)
class Prepared:
    """A clip readied while its event's snapshot was still on its way (multipart.prepare): checked
    against its record (size and mtime say it has not changed since), its multipart upload created and
    its part checksums computed, so its first part follows the snapshot without a pause."""

    job_id: int
    size: int
    mtime_ns: int
    upload_id: str | None  # None: a single PUT (only checked)
    part_size: int
    checksums: dict[int, str]  # part number -> base64 SHA-256
