"""JSON Schemas of every message, generated from the models: `python -m protocol.schema [--check]`.

Written to docs/protocol/*.schema.json for people and other implementations; a test fails when the
files, docs/protocol.md and the models disagree.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from pydantic import TypeAdapter

from protocol import VERSION
from protocol.events import EventNote
from protocol.heartbeat import Heartbeat
from protocol.instructions import HeartbeatReply

DOCS = Path(__file__).resolve().parent.parent / "docs" / "protocol"


def messages() -> dict[str, Any]:
    """Name -> model (or type) of every message in the contract."""
    from protocol.outbox import EventRecord
    return {"heartbeat": Heartbeat, "heartbeat-reply": HeartbeatReply, "event-note": EventNote,
            "outbox-record": EventRecord}


def schemas() -> dict[str, str]:
    """File name -> schema text, deterministic."""
    out = {}
    for name, model in messages().items():
        schema = TypeAdapter(model).json_schema(by_alias=True, mode="validation")
        schema = {"$schema": "https://json-schema.org/draft/2020-12/schema",
                  "$id": f"mobile-cctv/protocol/v{VERSION}/{name}.schema.json", **schema}
        out[f"{name}.schema.json"] = json.dumps(schema, indent=1, sort_keys=True) + "\n"
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if the files are out of date")
    parser.add_argument("--dir", type=Path, default=DOCS)
    args = parser.parse_args(argv)
    stale = []
    for name, text in schemas().items():
        path = args.dir / name
        current = path.read_text() if path.exists() else None
        if current != text:
            stale.append(name)
            if not args.check:
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(text)
    if args.check and stale:
        print(f"out of date: {', '.join(stale)} (run python -m protocol.schema)", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
