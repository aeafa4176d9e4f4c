"""What a unit puts in the central bucket for an upload_range or an event, built with the agent's own
record and manifest code (agent.outbox, agent.upload.manifest) and uploaded as agent/upload/s3.py does.

Used by the evidence tests that do not run a whole agent; the end-to-end test runs `cctv-agent run`.
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from agent.events.outbox import EventFile, EventRecord
from agent.upload.manifest import build_manifest

DATA_DIR = Path(__file__).resolve().parents[2] / ".." / "shared" / "data"
SOURCE_CLIP = DATA_DIR / "opencv_vtest_480x360.avi"


def iso(ts: datetime) -> str:
    return ts.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def make_segments(
    folder: Path, unit_id: str, start: datetime, count: int = 3, seconds: int = 2, skip: int = 0
) -> list[Path]:
    """Real footage (from frame `skip`) cut into H.264 MP4 segments named as agent/segments.py names them."""
    import av

    folder.mkdir(parents=True, exist_ok=True)
    out: list[Path] = []
    with av.open(str(SOURCE_CLIP)) as src:
        frames = src.decode(video=0)
        for _ in range(skip):
            next(frames)
        for i in range(count):
            t = start + timedelta(seconds=i * seconds)
            stamp = t.strftime("%Y%m%dT%H%M%S") + f".{t.microsecond // 1000:03d}Z"
            path = folder / f"{unit_id}_{stamp}.mp4"
            with av.open(str(path), "w", format="mp4") as dst:
                stream = dst.add_stream("libx264", rate=10)
                stream.width, stream.height, stream.pix_fmt = 480, 360, "yuv420p"
                stream.options = {"preset": "ultrafast"}
                for _ in range(seconds * 10):
                    frame = next(frames).reformat(format="yuv420p")
                    frame.pts = None
                    for packet in stream.encode(frame):
                        dst.mux(packet)
                for packet in stream.encode():
                    dst.mux(packet)
            out.append(path)
    return out


@dataclass
class Uploaded:
    prefix: str
    manifest: bytes
    keys: list[str]


def upload_record(
    client: Any,
    bucket: str,
    unit_id: str,
    event_id: str,
    start: datetime,
    end: datetime,
    files: list[Path],
    key: Ed25519PrivateKey,
    previous: str | None = None,
    prefix: str = "units",
    role: str = "segment",
) -> Uploaded:
    """Sign a manifest for `files` (the agent's format) and put it and them under the record's prefix."""
    entries = []
    for i, path in enumerate(files):
        data = path.read_bytes()
        entries.append(
            EventFile(
                f"{role}-{i:04d}" if role == "segment" else role,
                f"x/{path.name}",
                len(data),
                hashlib.sha256(data).hexdigest(),
                "video/mp4",
            )
        )
    record = EventRecord(
        event_id=event_id,
        unit_id=unit_id,
        site="High St north",
        start=iso(start),
        end=iso(end),
        clip_start=iso(start),
        clip_end=iso(end),
        peak_score=0.0,
        peak_time=iso(start),
        boxes=[],
        clock_synced=True,
        software_version="0.1.0",
        created_at=iso(end),
        files=entries,
        extra={"kind": "range"},
    )
    raw = build_manifest(record, unit_id, previous, key)
    base = f"{prefix}/{unit_id}/{start:%Y}/{start:%m}/{start:%d}/{event_id}/"
    keys = []
    for name, data, ctype in [("manifest.json", raw, "application/json")] + [
        (p.name, p.read_bytes(), "video/mp4") for p in files
    ]:
        digest = hashlib.sha256(data)
        client.put_object(
            Bucket=bucket,
            Key=base + name,
            Body=data,
            ContentType=ctype,
            ChecksumSHA256=base64.b64encode(digest.digest()).decode(),
            Metadata={"sha256": digest.hexdigest()},
        )
        keys.append(base + name)
    return Uploaded(base, raw, keys)
