"""Field types every message shares: UTC times, bounded counts, printable text, ids; one base model.

Imported by the message modules of this package only; the agent and the control room use the messages.
"""

from __future__ import annotations

import copy
import math
import re
from datetime import datetime
from typing import Annotated, Any, TypeVar

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    ValidationError,
)

from protocol import VERSION, ids
from protocol.times import format_utc, parse_utc


def _utc(value: Any) -> datetime:
    return parse_utc(value)


def _pattern(pattern: re.Pattern[str], what: str) -> AfterValidator:
    def check(value: str) -> str:
        if not pattern.fullmatch(value):
            raise ValueError(f"{what}: {ids.describe(pattern)}")
        return value
    return AfterValidator(check)


def _schema_version(value: int) -> int:
    if value != VERSION:
        raise ValueError(f"unsupported schema version {value} (this side speaks {VERSION})")
    return value


SchemaVersion = Annotated[int, AfterValidator(_schema_version)]  # strict int: true is not 1
UtcTime = Annotated[datetime, BeforeValidator(_utc),
                    PlainSerializer(format_utc, return_type=str, when_used="json")]
Text = Annotated[str, Field(max_length=200), _pattern(ids.PRINTABLE, "text without control characters")]
Short = Annotated[str, Field(max_length=64), _pattern(ids.PRINTABLE, "text without control characters")]
Count = Annotated[int, Field(ge=0, le=2**62)]
Seconds = Annotated[float, Field(ge=0, le=10**10)]
UnitId = Annotated[str, _pattern(ids.UNIT_ID, "unit id")]
EventId = Annotated[str, _pattern(ids.EVENT_ID, "event id")]
InstructionId = Annotated[str, _pattern(ids.INSTRUCTION_ID, "instruction id")]
Bucket = Annotated[str, _pattern(ids.S3_BUCKET, "bucket")]
Sha256 = Annotated[str, _pattern(ids.SHA256_HEX, "sha256")]
Unit01 = Annotated[float, Field(ge=0.0, le=1.0)]


class Part(BaseModel):
    """Strict: no quiet coercion ("12" is not 12, true is not 1); ints are still accepted as floats.
    Unknown fields are ignored, so a newer unit can talk to an older control room."""

    model_config = ConfigDict(extra="ignore", frozen=True, strict=True, populate_by_name=True)

    def wire(self) -> dict[str, Any]:
        """The JSON body as sent: wire names ("schema"), times in the wire form, nulls kept."""
        return self.model_dump(mode="json", by_alias=True)


M = TypeVar("M", bound=BaseModel)


def first_error(exc: ValidationError) -> str:
    """One line naming the field and what is wrong with it."""
    err = exc.errors(include_url=False)[0]
    where = ".".join(str(p) for p in err["loc"] if p != "schema_") or "body"
    if err["loc"] and err["loc"][0] == "schema_":
        where = "schema"
    msg = err["msg"].removeprefix("Value error, ")
    return f"{where}: {msg}"


def fit(model: type[M], data: dict[str, Any], *, attempts: int = 50) -> M:
    """Build a message from readings that may not all fit its rules (the sending side's one helper).

    A reading outside the accepted range or of the wrong type becomes null rather than getting the
    whole message refused; over-long text is cut to its limit; a finite float where a count is
    expected is rounded. A required field that cannot be made valid raises ValidationError."""
    data = copy.deepcopy(data)
    for _ in range(attempts):
        try:
            return model.model_validate(data)
        except ValidationError as exc:
            errors = exc.errors(include_url=False)
            fixed = False
            for err in errors:
                fixed |= _repair(data, list(err["loc"]), err)
            if not fixed:
                raise
    return model.model_validate(data)


def _repair(data: Any, loc: list[Any], err: dict[str, Any]) -> bool:
    *path, leaf = loc or [None]
    parent = data
    for step in path:
        try:
            parent = parent[_key(parent, step)]
        except (KeyError, IndexError, TypeError):
            return False
    key = _key(parent, leaf)
    try:
        value = parent[key]
    except (KeyError, IndexError, TypeError):
        return False
    if err["type"] == "string_too_long" and isinstance(value, str):
        parent[key] = value[: err["ctx"]["max_length"]]
        return True
    if err["type"] == "int_type" and isinstance(value, float) and math.isfinite(value):
        parent[key] = int(round(value))
        return True
    if isinstance(parent, list):
        del parent[key]
        return True
    if value is None:
        return False  # required: nothing more to do
    parent[key] = None
    return True


def _key(container: Any, step: Any) -> Any:
    if isinstance(container, dict) and step == "schema_":
        return "schema"
    return step
