"""Instructions the control room sends back in a heartbeat response, parsed strictly.

heartbeat.py hands the body here; known, well-formed instructions go on to the unit (service.py),
anything unknown or malformed is dropped with one log line and never raises (docs/protocol.md).
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Annotated, Any, Literal

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    TypeAdapter,
    ValidationError,
    model_validator,
)

log = logging.getLogger(__name__)

MAX_INSTRUCTIONS = 20  # per response; the rest are ignored (a sane server sends a handful)
MAX_RANGE = timedelta(days=7)


class _Instruction(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    id: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$")  # as the control room issues them


class UploadRange(_Instruction):
    """Queue the continuous footage covering [start, end] ahead of other clips, past the budget."""

    type: Literal["upload_range"]
    start: AwareDatetime
    end: AwareDatetime
    priority: Literal["high"] = "high"

    @model_validator(mode="after")
    def _ordered(self) -> UploadRange:
        if not self.start < self.end:
            raise ValueError("end must be after start")
        if self.end - self.start > MAX_RANGE:
            raise ValueError("range longer than 7 days")
        return self


class ConfigVersion(_Instruction):
    """The config version the control room expects; a mismatch is logged and shown in status."""

    type: Literal["config_version"]
    version: str = Field(min_length=1, max_length=64)


class Ping(_Instruction):
    """Tests the channel; the unit only acknowledges it."""

    type: Literal["ping"]


Instruction = Annotated[UploadRange | ConfigVersion | Ping, Field(discriminator="type")]
_ADAPTER: TypeAdapter[Instruction] = TypeAdapter(Instruction)
KNOWN_TYPES = ("upload_range", "config_version", "ping")


def _describe(raw: Any, err: ValidationError) -> str:
    first = err.errors()[0]
    where = ".".join(str(p) for p in first["loc"]) or "(instruction)"
    ident = raw.get("id") if isinstance(raw, dict) else None
    return f"id={ident!r} {where}: {first['msg']}"


def parse_instructions(body: Any) -> list[UploadRange | ConfigVersion | Ping]:
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
    parsed: list[UploadRange | ConfigVersion | Ping] = []
    for raw in raw_list[:MAX_INSTRUCTIONS]:
        kind = raw.get("type") if isinstance(raw, dict) else None
        if kind not in KNOWN_TYPES:
            log.warning("instruction ignored: unknown type %r", str(kind)[:40])
            continue
        try:
            parsed.append(_ADAPTER.validate_python(raw))
        except ValidationError as err:
            log.warning("instruction ignored: %s", _describe(raw, err)[:200])
    return parsed
