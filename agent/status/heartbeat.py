"""Heartbeat: builds the versioned JSON of docs/protocol.md from component state and probes, posts it.

service.py calls build_payload() and HeartbeatClient.post() from its own thread; errors come back as
TransientError (retry later) or PermanentError subclasses (Unauthorized: stop; Rejected: drop this one).
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from agent import __version__
from agent.clock import Clock
from agent.config import Config, StatusConfig
from agent.errors import PermanentError, TransientError
from agent.events.ledger import LOST_PREFIX, LossReason
from agent.http import HttpClient, RequestError, Response
from agent.state import ComponentState
from agent.status.instructions import ConfigVersion, Ping, UploadRange, parse_instructions
from agent.status.probes import Probes
from protocol import VERSION
from protocol.fields import fit
from protocol.heartbeat import MAX_ACKS, MAX_PAYLOAD_BYTES, Heartbeat
from protocol.times import format_utc, parse_aware

log = logging.getLogger(__name__)

RETRYABLE_STATUS = {408, 425, 429, 500, 502, 503, 504}
# Size budget of one heartbeat (protocol.heartbeat.MAX_PAYLOAD_BYTES), tighter than the schema's limits.
MAX_ERROR = 120
MAX_LABEL = 32


class Unauthorized(PermanentError):
    """401/403: the token is wrong or revoked; sending stops until the config changes."""

    def __init__(self, message: str, revoked: bool) -> None:
        super().__init__(message)
        self.revoked = revoked


class Rejected(PermanentError):
    """400/413 or another definitive refusal of this heartbeat; the next one may be accepted."""


def payload_time(value: Any) -> str | None:
    """Any time a stage stored (epoch seconds, datetime, ISO text) as the protocol's RFC 3339 UTC form;
    None for what is not a time or is naive (never guessed)."""
    try:
        if isinstance(value, bool) or value is None or value == "":
            return None
        if isinstance(value, str):
            value = parse_aware(value)
        if isinstance(value, int | float | datetime):
            return format_utc(value)
    except (ValueError, OverflowError, OSError):
        pass
    return None


def _cut(value: Any, limit: int) -> Any:
    return value[:limit] or None if isinstance(value, str) else value


def _cut_labels(block: dict[str, Any] | None) -> dict[str, Any] | None:
    return None if block is None else {k: _cut(v, MAX_LABEL) for k, v in block.items()}


def _fields(row: ComponentState | None) -> dict[str, Any]:
    return row.state if row is not None else {}


def camera_block(row: ComponentState | None, now_mono: float, stall_s: float) -> dict[str, Any] | None:
    if row is None:
        return None
    s = row.state
    state = s.get("state")
    if state == "ok" and now_mono - row.updated_mono > stall_s:
        state = "stalled"  # the camera thread stopped reporting: it is hung, whatever it last said
    return {
        "state": state,
        "fps": s.get("fps"),
        "last_frame_at": payload_time(s.get("last_frame_at")),
        "restarts": s.get("restarts"),
        "error": _cut(s.get("error"), MAX_ERROR),
    }


def build_payload(
    cfg: Config,
    states: dict[str, ComponentState],
    counters: dict[str, int],
    probes: Probes,
    clock: Clock,
    *,
    seq: int,
    reason: str,
    acked: list[str],
) -> dict[str, Any]:
    """The heartbeat body (protocol.heartbeat.Heartbeat); blocks with no source at all are null.

    Built through protocol.fields.fit: values outside the ranges the control room accepts become null,
    so one odd reading never gets the whole heartbeat refused."""
    up = _fields(states.get("upload"))
    return fit(Heartbeat, {
        "schema": VERSION,
        "unit_id": cfg.unit.id,
        "seq": seq,
        "sent_at": format_utc(clock.time()),
        "reason": reason,
        "software_version": __version__,
        "boot_id": probes.boot_id(),
        "uptime_s": probes.uptime_s(),
        "clock": clock_block(probes, states.get("clock")),
        "camera": camera_block(states.get("camera"), clock.monotonic(), cfg.camera.stall_timeout_s),
        "recording": recording_block(states.get("recording"), cfg, states.get("gaps")),
        "motion": motion_block(states.get("motion")),
        "disk": disk_block(cfg, probes, states, counters),
        "uploads": None if "upload" not in states else uploads_block(up),
        "data": data_block(cfg, up),
        "system": probes.system(),
        "modem": _cut_labels(probes.modem()),
        "gps": gps_block(probes),
        "config_version": cfg.status.config_version or None,
        "acked": acked[:MAX_ACKS],
    }).wire()


def lost_reasons(counters: dict[str, int]) -> dict[str, int] | None:
    reasons = {r.value: counters.get(LOST_PREFIX + r.value, 0) for r in LossReason}
    return reasons if any(reasons.values()) else None


def recording_block(row: ComponentState | None, cfg: Config,
                    gaps: ComponentState | None = None) -> dict[str, Any] | None:
    if row is None:
        return None
    s, g = row.state, _fields(gaps)
    last_gap = None
    if g.get("last_start") is not None:  # footage lost to a power cut or kill -9 (agent.recording.gaps)
        last_gap = {"start": payload_time(g.get("last_start")), "end": payload_time(g.get("last_end")),
                    "reason": g.get("last_reason")}
    return {
        "state": s.get("state"),
        "segment_seconds": s.get("segment_seconds", cfg.recording.segment_seconds),
        "last_segment_at": payload_time(s.get("last_segment_at")),
        "gaps": g.get("count", 0),
        "last_gap": last_gap,
    }


def motion_block(row: ComponentState | None) -> dict[str, Any] | None:
    if row is None:
        return None
    return {"last_event_at": payload_time(row.state.get("last_event_at")),
            "events_today": row.state.get("events_today")}


def disk_block(cfg: Config, probes: Probes, states: dict[str, ComponentState],
               counters: dict[str, int]) -> dict[str, Any]:
    disk = probes.disk(cfg.unit.data_dir) or {}
    ret, rec = _fields(states.get("retention")), _fields(states.get("recording"))
    return {
        "total_bytes": disk.get("total_bytes", ret.get("total_bytes")),
        "free_bytes": disk.get("free_bytes", ret.get("free_bytes")),
        "oldest_footage_at": payload_time(ret.get("oldest_footage_at") or rec.get("oldest_footage_at")),
        "retention_days": cfg.retention.max_age_days,
        "events_lost": counters.get("events_lost", 0),
        # why events were lost ({reason: count}, agent.events.ledger); null while none was
        "events_lost_reasons": lost_reasons(counters),
    }


def uploads_block(up: dict[str, Any]) -> dict[str, Any]:
    return {
        "pending": up.get("pending"),
        "pending_bytes": up.get("pending_bytes"),
        "oldest_pending_age_s": up.get("oldest_pending_age_s"),
        "failed": up.get("failed"),
        "last_success_at": payload_time(up.get("last_success_at")),
        "held_by_budget": up.get("held_by_budget"),
    }


def data_block(cfg: Config, up: dict[str, Any]) -> dict[str, Any]:
    budget = up.get("budget_bytes")
    if budget is None and cfg.upload.monthly_budget_mb:
        budget = int(cfg.upload.monthly_budget_mb * 1_000_000)
    return {"period_start": payload_time(up.get("period_start")), "used_bytes": up.get("used_bytes"),
            "budget_bytes": budget}


def gps_block(probes: Probes) -> dict[str, Any] | None:
    gps = probes.gps()
    if gps is not None:
        gps = gps | {"time": payload_time(gps.get("time")),  # gpsd's text, normalised for the schema
                     "lat": gps.get("lat"), "lon": gps.get("lon")}
    return gps


def clock_block(probes: Probes, row: ComponentState | None) -> dict[str, Any] | None:
    """Clock sync from chrony/timedatectl, else what the agent's clock component reported."""
    probed = probes.clock()
    if probed is not None:
        return dict(probed)
    if row is None:
        return None
    s = row.state
    synced = s.get("synced")
    return {
        "synced": synced if isinstance(synced, bool) else None,
        "offset_s": s.get("offset_s"),
        "source": s.get("source"),
    }


def encode(payload: dict[str, Any]) -> bytes:
    body = json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()
    if len(body) > MAX_PAYLOAD_BYTES:
        log.warning("heartbeat is %d bytes, over the %d-byte design limit", len(body), MAX_PAYLOAD_BYTES)
    return body


@dataclass(frozen=True)
class Reply:
    server_time: str | None
    instructions: list[UploadRange | ConfigVersion | Ping]


class HeartbeatClient:
    """POSTs heartbeats over HTTPS with the unit's bearer token; TLS verification always on."""

    def __init__(self, cfg: StatusConfig, unit_id: str, session: HttpClient | None = None) -> None:
        self._cfg = cfg
        self.url = f"{cfg.url.rstrip('/')}/api/v1/units/{unit_id}/heartbeat"
        self._session = session or HttpClient()  # no proxies or netrc from the environment

    def close(self) -> None:
        self._session.close()

    def post(self, body: bytes) -> Reply:
        token = self._cfg.token.get_secret_value() if self._cfg.token else ""
        try:
            resp = self._session.post(
                self.url,
                body=body,
                headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json",
                         "Accept": "application/json", "User-Agent": f"cctv-agent/{__version__}"},
                timeout=self._cfg.timeout_s,
                ca_bundle=self._cfg.ca_bundle,
            )
        except RequestError as err:
            if err.tls:
                raise TransientError(f"TLS verification failed: {err.cause}") from None
            raise TransientError(f"control room unreachable: {err.cause}") from None
        return self._answer(resp)

    def _answer(self, resp: Response) -> Reply:
        code = resp.status_code
        if code in (401, 403):
            revoked = code == 401 and _error_of(resp) == "revoked"
            raise Unauthorized(f"control room refused the token ({code} {_error_of(resp) or ''})".strip(),
                               revoked=revoked)
        if code in RETRYABLE_STATUS or code >= 500:
            raise TransientError(f"control room answered {code}")
        if code != 200:
            raise Rejected(f"control room rejected the heartbeat: {code} {_error_of(resp) or ''}".strip())
        try:
            body = resp.json()
        except ValueError:
            log.warning("heartbeat accepted but the response is not JSON")
            return Reply(None, [])
        server_time = body.get("server_time") if isinstance(body, dict) else None
        return Reply(payload_time(server_time), parse_instructions(body))


def _error_of(resp: Response) -> str | None:
    try:
        body = resp.json()
    except ValueError:
        return None
    return body.get("error") if isinstance(body, dict) else None
