"""What each demo unit has done, read from the outside: its outbox records (recorded), the bucket
(uploaded), the control room's events page (listed) and its link (bytes sent, up or down).

Rendered as one block: redrawn in place on a terminal, plain lines now and then otherwise.
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any, TextIO

from demo.partnership import Login, WebSession
from demo.units import BUCKET, PREFIX


@dataclass(frozen=True)
class Recorded:
    event_id: str
    files: dict[str, tuple[int, str]]  # file name -> (size, sha256)


@dataclass
class UnitStatus:
    unit_id: str
    link: str
    down_for_s: float | None
    agent: str
    recorded: int
    uploaded: int
    listed: int | None
    bytes_up: int

    @property
    def queued(self) -> int:
        return self.recorded - self.uploaded


def read_records(data_dir: Path) -> dict[str, Recorded]:
    """Every event the unit published (its outbox keeps each record); range uploads left out."""
    out: dict[str, Recorded] = {}
    for path in sorted((data_dir / "outbox").glob("*.json")):
        try:
            data = json.loads(path.read_bytes())
        except (OSError, ValueError):
            continue  # being written (atomic rename makes this rare) or corrupt: the agent reports it
        if not isinstance(data, dict) or (data.get("extra") or {}).get("kind") == "range":
            continue
        files = {PurePosixPath(f["path"]).name: (int(f["size"]), str(f["sha256"])) for f in data["files"]}
        out[data["event_id"]] = Recorded(data["event_id"], files)
    return out


def bucket_objects(s3: Any, unit_id: str) -> dict[tuple[str, str], int]:
    """(event id, file name) -> size of every object under the unit's prefix."""
    out: dict[tuple[str, str], int] = {}
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=f"{PREFIX}/{unit_id}/"):
        for obj in page.get("Contents", []):
            parts = obj["Key"].split("/")
            if len(parts) >= 2:
                out[(parts[-2], parts[-1])] = obj["Size"]
    return out


def uploaded(records: dict[str, Recorded], objects: dict[tuple[str, str], int]) -> set[str]:
    """Events whose every file is in the bucket at its recorded size."""
    return {eid for eid, rec in records.items()
            if all(objects.get((eid, name)) == size for name, (size, _) in rec.files.items())}


ROW = re.compile(r'<tr\b[^>]*\bdata-event-id="([^"]+)"(.*?)</tr>', re.S)


def listed_events(web: WebSession, unit_id: str) -> dict[str, str]:
    """Event id -> its page path, as the control room's events list shows them (newest 100)."""
    out = {}
    for eid, body in ROW.findall(web.get(f"/events?unit={unit_id}").text):
        link = re.search(r'href="(/events/\d+)"', body)
        out[eid] = link.group(1) if link else ""
    return out


@dataclass
class StatusReader:
    system: Any  # DemoSystem
    viewer: Login
    _web: WebSession | None = None
    _listed_at: float = 0.0
    _listed: dict[str, int] = field(default_factory=dict)

    def collect(self, list_every_s: float = 4.0) -> list[UnitStatus]:
        s3 = self.system.s3()
        now = time.monotonic()
        if now - self._listed_at >= list_every_s:
            self._listed_at = now
            self._refresh_listed()
        rows = []
        for spec in self.system.units:
            link = self.system.links[spec.unit_id]
            records = read_records(self.system.run_dir / "units" / spec.unit_id / "data")
            done = uploaded(records, bucket_objects(s3, spec.unit_id))
            child = self.system.agents[spec.unit_id]
            code = child.proc.poll()
            down = None if link.down_since is None else now - link.down_since
            rows.append(UnitStatus(spec.unit_id, spec.link_text(), down,
                                   "running" if code is None else f"exited {code}", len(records), len(done),
                                   self._listed.get(spec.unit_id), link.state.bytes_up))
        return rows

    def _refresh_listed(self) -> None:
        try:
            if self._web is None:
                self._web = WebSession(self.system.url, self.viewer)
            for spec in self.system.units:
                self._listed[spec.unit_id] = len(listed_events(self._web, spec.unit_id))
        except Exception:  # noqa: BLE001 - the block shows '?' rather than stopping the demo
            self._web = None
            self._listed.clear()


def _mb(n: int) -> str:
    return f"{n / 1e6:.1f} MB" if n >= 100_000 else f"{n / 1e3:.0f} kB"


def render(rows: list[UnitStatus], elapsed_s: float) -> list[str]:
    head = f"{'unit':<12} {'link':<27} {'agent':<9} {'recorded':>8} {'queued':>6} {'uploaded':>8} " \
           f"{'listed':>6} {'sent':>9}"
    lines = [f"units after {elapsed_s:.0f} s (events: recorded by the unit, queued on it, uploaded to S3, "
             "listed by the control room)", head]
    for r in rows:
        link = r.link + (f", DOWN {r.down_for_s:.0f} s" if r.down_for_s is not None else ", up")
        listed = "?" if r.listed is None else str(r.listed)
        lines.append(f"{r.unit_id:<12} {link:<27} {r.agent:<9} {r.recorded:>8} {r.queued:>6} "
                     f"{r.uploaded:>8} {listed:>6} {_mb(r.bytes_up):>9}")
    return lines


class StatusBlock:
    """On a TTY the block is redrawn in place; otherwise it is printed every `every_s` seconds."""

    def __init__(self, out: TextIO, every_s: float = 15.0, tty: bool | None = None) -> None:
        self.out = out
        self.tty = out.isatty() if tty is None else tty
        self.every_s = every_s
        self._drawn = 0
        self._last = -1e18

    def show(self, lines: list[str]) -> None:
        now = time.monotonic()
        if self.tty:
            up = f"\033[{self._drawn}F" if self._drawn else ""
            self.out.write(up + "".join(f"\033[K{line}\n" for line in lines))
            self.out.flush()
            self._drawn = len(lines)
        elif now - self._last >= self.every_s:
            self._last = now
            self.out.write("\n".join(lines) + "\n")
            self.out.flush()

    def forget(self) -> None:
        """Something else was printed below the block: draw the next one afresh."""
        self._drawn = 0
