"""Instructions (control room -> unit, in the heartbeat reply): fetch footage, hold it as evidence,
expected config, ping.

The control room issues them (control_room.instructions) and the unit parses them strictly
(agent.status.instructions); an unknown or malformed one is dropped on the unit, never fatal.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, TypeAdapter, model_validator

from protocol.ids import INSTRUCTION_ID

MAX_INSTRUCTIONS = 20  # per response; the rest are ignored (a sane server sends a handful)
MAX_RANGE = timedelta(days=7)
KNOWN_TYPES = ("upload_range", "config_version", "ping", "hold_range", "release_hold")


class _Instruction(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    id: str = Field(pattern=INSTRUCTION_ID.pattern)


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


class HoldRange(_Instruction):
    """Evidential hold: keep the footage of [start, end] past retention until released (or `until`)."""

    type: Literal["hold_range"]
    start: AwareDatetime
    end: AwareDatetime
    hold: str = Field(pattern=INSTRUCTION_ID.pattern)  # the control room's name for the hold
    reason: str = Field("", max_length=200)
    until: AwareDatetime | None = None

    @model_validator(mode="after")
    def _ordered(self) -> HoldRange:
        if not self.start < self.end:
            raise ValueError("end must be after start")
        return self


class ReleaseHold(_Instruction):
    """End an evidential hold placed by hold_range; retention treats the footage normally again."""

    type: Literal["release_hold"]
    hold: str = Field(pattern=INSTRUCTION_ID.pattern)


class ConfigVersion(_Instruction):
    """The config version the control room expects; a mismatch is logged and shown in status."""

    type: Literal["config_version"]
    version: str = Field(min_length=1, max_length=64)


class Ping(_Instruction):
    """Tests the channel; the unit only acknowledges it."""

    type: Literal["ping"]


Instruction = Annotated[
    UploadRange | ConfigVersion | Ping | HoldRange | ReleaseHold, Field(discriminator="type")
]
ADAPTER: TypeAdapter[Instruction] = TypeAdapter(Instruction)


class HeartbeatReply(BaseModel):
    """The control room's answer to a heartbeat (documented for the schema; parsed item by item)."""

    model_config = ConfigDict(extra="ignore")
    server_time: str | None = None
    instructions: list[Instruction] = Field(default_factory=list, max_length=MAX_INSTRUCTIONS)
