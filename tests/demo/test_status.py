"""The demo's status block, from the outside of each unit: outbox records (recorded), bucket objects
(uploaded), redrawn in place on a terminal and printed now and then otherwise."""

from __future__ import annotations

import io
import json
from pathlib import Path

from demo.status import StatusBlock, UnitStatus, read_records, render, uploaded


def record(outbox: Path, event_id: str, files: dict[str, int], kind: str | None = None) -> None:
    outbox.mkdir(parents=True, exist_ok=True)
    body = {"event_id": event_id, "extra": {"kind": kind} if kind else {},
            "files": [{"role": n.split(".")[0], "path": f"events/{event_id}/{n}", "size": size,
                       "sha256": "ab" * 32, "content_type": "x"} for n, size in files.items()]}
    (outbox / f"{event_id}.json").write_text(json.dumps(body))


def test_recorded_and_uploaded_events_are_counted_from_the_outbox_and_the_bucket(tmp_path: Path) -> None:
    outbox = tmp_path / "outbox"
    record(outbox, "u-1", {"clip.mp4": 100, "snapshot.jpg": 10})
    record(outbox, "u-2", {"clip.mp4": 200, "snapshot.jpg": 20})
    record(outbox, "u-range-7", {"seg.mp4": 5}, kind="range")  # requested footage is not an event
    (outbox / "u-3.json.tmp").write_text("{")  # being written: not counted, no error
    records = read_records(tmp_path)
    assert sorted(records) == ["u-1", "u-2"]
    objects = {("u-1", "clip.mp4"): 100, ("u-1", "snapshot.jpg"): 10, ("u-2", "snapshot.jpg"): 20,
               ("u-2", "clip.mp4"): 150}  # u-2's clip is still arriving
    assert uploaded(records, objects) == {"u-1"}


def test_block_is_redrawn_in_place_on_a_terminal_and_printed_at_intervals_otherwise() -> None:
    rows = [UnitStatus("u1", "2 Mbit/s", None, "running", 3, 2, 3, 1_500_000),
            UnitStatus("u2", "1 Mbit/s, drops", 42.0, "running", 2, 0, None, 2_000)]
    lines = render(rows, 61)
    assert lines[2].split() == ["u1", "2", "Mbit/s,", "up", "running", "3", "1", "2", "3", "1.5", "MB"]
    assert "DOWN 42 s" in lines[3] and lines[3].split()[-5:] == ["2", "0", "?", "2", "kB"]
    tty = io.StringIO()
    block = StatusBlock(tty, tty=True)
    block.show(lines)
    block.show(lines)
    assert tty.getvalue().count("\033[4F") == 1  # the second drawing goes back up over the first
    log = io.StringIO()
    block = StatusBlock(log, every_s=3600, tty=False)
    block.show(lines)
    block.show(lines)
    assert log.getvalue() == "\n".join(lines) + "\n" and "\033" not in log.getvalue()
