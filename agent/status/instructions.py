"""Instructions the control room sends back in a heartbeat response, parsed strictly.

heartbeat.py hands the body here; known, well-formed instructions go on to the unit (service.py),
anything unknown or malformed is dropped with one log line and never raises (docs/protocol.md).
"""

from __future__ import annotations

import logging
from typing import Any

from pydantic import ValidationError

from protocol.instructions import (
    ADAPTER,
    KNOWN_TYPES,
    MAX_INSTRUCTIONS,
    ConfigVersion,
    HoldRange,
    Ping,
    ReleaseHold,
    UploadRange,
)

__all__ = ["ConfigVersion", "HoldRange", "Ping", "ReleaseHold", "UploadRange", "parse_instructions"]

log = logging.getLogger(__name__)


def _describe(raw: Any, err: ValidationError) -> str:
    first = err.errors()[0]
    where = ".".join(str(p) for p in first["loc"]) or "(instruction)"
    ident = raw.get("id") if isinstance(raw, dict) else None
    return f"id={ident!r} {where}: {first['msg']}"


def parse_instructions(body: Any) -> list[UploadRange | ConfigVersion | Ping | HoldRange | ReleaseHold]:
    """The valid instructions of a heartbeat response body; each rejected one is logged once."""
    if not isinstance(body, dict):
        log.warning("heartbeat response is not a JSON object; no instructions taken")
        return []
    raw_list = body.get("instructions", [])
    if not isinstance(raw_list, list):
        log.warning("heartbeat response: 'instructions' is not a list; ignored")
        return []
    if len(raw_list) > MAX_INSTRUCTIONS:
        log.warning("heartbeat response: %d instructions, only the first %d taken",
                    len(raw_list), MAX_INSTRUCTIONS)
    parsed: list[UploadRange | ConfigVersion | Ping | HoldRange | ReleaseHold] = []
    for raw in raw_list[:MAX_INSTRUCTIONS]:
        kind = raw.get("type") if isinstance(raw, dict) else None
        if kind not in KNOWN_TYPES:
            log.warning("instruction ignored: unknown type %r", str(kind)[:40])
            continue
        try:
            parsed.append(ADAPTER.validate_python(raw))
        except ValidationError as err:
            log.warning("instruction ignored: %s", _describe(raw, err)[:200])
    return parsed
