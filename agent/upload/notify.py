"""Event notifications to the control room (docs/protocol.md): sent by the fast lane as queued jobs.

First when the manifest and snapshot are in the bucket, again when the clip is verified; idempotent
on event_id, so a repeat after a crash only updates the same event on the control room.
"""

from __future__ import annotations

import logging
from typing import Any

from agent.config import Config
from agent.errors import PermanentError, TransientError
from agent.events.outbox import EventRecord
from agent.http import HttpClient, RequestError
from agent.upload.queue import Job
from protocol import VERSION
from protocol.events import EventNote
from protocol.fields import fit

log = logging.getLogger(__name__)

STATES = {"notify_snapshot": "snapshot_uploaded", "notify_clip": "clip_uploaded"}  # job role -> state


def event_body(cfg: Config, record: EventRecord, role: str, done: list[Job]) -> dict[str, Any]:
    """The protocol body (protocol.events.EventNote); `objects` lists only what is already in the bucket."""
    objects = {j.role: {"key": j.key, "size": j.size, "sha256": j.sha256} for j in done if j.key}
    return fit(EventNote, {
        "schema": VERSION,
        "event_id": record.event_id,
        "unit_id": cfg.unit.id,
        "site": record.site or cfg.unit.site,
        "start": record.start,
        "end": record.end,
        "clip_start": record.clip_start,
        "clip_end": record.clip_end,
        "peak_score": record.peak_score,
        "peak_time": record.peak_time,
        "boxes": record.boxes,
        "clock_synced": record.clock_synced,
        "previous_event_id": record.previous_event_id,
        "state": STATES[role],
        "bucket": cfg.upload.bucket,
        "objects": objects,
    }).wire()


def send_event(session: HttpClient, cfg: Config, body: dict[str, Any]) -> None:
    """POST one notification; TransientError to wait and retry, PermanentError for a refusal."""
    st = cfg.status
    if st.token is None:
        raise PermanentError("status.token is not set: cannot notify the control room")
    url = f"{st.url.rstrip('/')}/api/v1/units/{cfg.unit.id}/events"
    try:
        resp = session.post(
            url,
            json_body=body,
            timeout=st.timeout_s,
            ca_bundle=st.ca_bundle,
            headers={"Authorization": f"Bearer {st.token.get_secret_value()}"},
        )  # redirects are not followed: a login page or plain http is not a delivery
    except RequestError as err:
        raise TransientError(f"control room unreachable: {err.cause}") from None
    if resp.status_code == 200:
        return
    detail = resp.text[:200].replace("\n", " ")
    if resp.status_code >= 500 or resp.status_code in (408, 429):
        raise TransientError(f"control room answered {resp.status_code}: {detail}")
    raise PermanentError(f"control room refused event {body['event_id']}: {resp.status_code} {detail}")
