"""The heartbeat field list, read from docs/protocol.md itself so code and contract cannot drift."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

PROTOCOL = Path(__file__).resolve().parents[2] / "docs" / "protocol.md"


def documented_heartbeat() -> dict[str, Any]:
    text = PROTOCOL.read_text()
    section = text.split("## Heartbeat", 1)[1]
    block = re.search(r"```json\n(.*?)```", section, re.S)
    assert block, "no JSON example in the heartbeat section of docs/protocol.md"
    return json.loads(block.group(1))


def schema_problems(payload: dict[str, Any], documented: dict[str, Any] | None = None) -> list[str]:
    """Differences between a payload and the documented example: keys, nesting and JSON types."""
    documented = documented or documented_heartbeat()
    problems = []
    if set(payload) != set(documented):
        problems.append(f"keys differ: extra {set(payload) - set(documented)}, "
                        f"missing {set(documented) - set(payload)}")
    for key, example in documented.items():
        value = payload.get(key)
        if value is None:
            if key == "schema":
                problems.append("schema is mandatory")
            continue
        if isinstance(example, dict):
            if not isinstance(value, dict):
                problems.append(f"{key}: expected an object")
            else:
                problems += [f"{key}.{p}" for p in schema_problems(value, example)]
        elif isinstance(example, bool) != isinstance(value, bool):
            problems.append(f"{key}: expected {type(example).__name__}, got {value!r}")
        elif isinstance(example, int | float) and not isinstance(value, int | float):
            problems.append(f"{key}: expected a number, got {value!r}")
        elif isinstance(example, str) and not isinstance(value, str):
            problems.append(f"{key}: expected text, got {value!r}")
        elif isinstance(example, list) and not isinstance(value, list):
            problems.append(f"{key}: expected a list, got {value!r}")
    return problems
