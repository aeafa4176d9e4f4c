"""Fixtures for the control room web tests: real footage made into a browser-playable clip, a real S3.

Imported by tests/control_room/test_web_*.py and test_browser.py; nothing here is faked.
"""

from __future__ import annotations

import base64
import hashlib
import re
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

DATA_DIR = Path(__file__).resolve().parents[2] / ".." / "shared" / "data"
SOURCE_CLIP = DATA_DIR / "opencv_vtest_480x360.avi"
S3_KEYS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing", "region_name": "eu-west-2"}
BUCKET = "cctv-footage"

CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def chromium_path() -> str | None:
    return shutil.which("chromium")


def make_clip(out: Path, seconds: float = 8.0) -> Path:
    """Re-encode the start of real footage as H.264 yuv420p MP4 with the index first (faststart)."""
    import av

    if not SOURCE_CLIP.exists():
        pytest.skip(f"real footage not found at {SOURCE_CLIP} (../shared/data next to the repository)")
    with (
        av.open(str(SOURCE_CLIP)) as src,
        av.open(str(out), "w", format="mp4", options={"movflags": "faststart"}) as dst,
    ):
        stream = dst.add_stream("libx264", rate=10)
        stream.width, stream.height, stream.pix_fmt = 480, 360, "yuv420p"
        stream.options = {"preset": "ultrafast"}
        for index, frame in enumerate(src.decode(video=0)):
            if index >= seconds * 10:
                break
            frame = frame.reformat(format="yuv420p")
            frame.pts = None
            for packet in stream.encode(frame):
                dst.mux(packet)
        for packet in stream.encode():
            dst.mux(packet)
    return out


def make_snapshot(out: Path) -> Path:
    """The first frame of the real footage as JPEG."""
    import av
    import cv2

    if not SOURCE_CLIP.exists():
        pytest.skip(f"real footage not found at {SOURCE_CLIP} (../shared/data next to the repository)")
    with av.open(str(SOURCE_CLIP)) as src:
        image = next(src.decode(video=0)).to_ndarray(format="bgr24")
    ok, jpeg = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 80])
    assert ok, "JPEG encoding failed"
    out.write_bytes(jpeg.tobytes())
    return out


@dataclass
class FootageObject:
    key: str
    size: int
    sha256: str

    def as_protocol(self) -> dict:
        return {"key": self.key, "size": self.size, "sha256": self.sha256}


@pytest.fixture(scope="session")
def clip_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_clip(tmp_path_factory.mktemp("footage") / "clip.mp4")


@pytest.fixture(scope="session")
def snapshot_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_snapshot(tmp_path_factory.mktemp("footage") / "snapshot.jpg")


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    """A moto S3 server speaking real HTTP on a free local port."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()


def s3_settings(tmp_path: Path, database_url: str, s3_endpoint: str, **extra: object):  # noqa: ANN201
    """Control-room settings for web tests whose footage lives on the test S3 server."""
    from control_room.config import Settings
    from tests.control_room.conftest import SECRET  # conftest imports this module: import late

    extra.setdefault("map_tile_url", "")  # the offline map: a test reaches nothing outside this machine
    return Settings(
        instance_dir=tmp_path,
        database_url=database_url,
        secret_key=SECRET,
        heartbeat_interval_s=60,
        sample_interval_s=0,
        s3_endpoint_url=s3_endpoint,
        s3_access_key_id="testing",
        s3_secret_access_key="testing",
        **extra,
    )


def s3_client(endpoint: str):
    import boto3

    return boto3.client("s3", endpoint_url=endpoint, **S3_KEYS)


def put_footage(endpoint: str, key: str, path: Path, bucket: str = BUCKET) -> FootageObject:
    """Upload a file as agent/upload/s3.py does: SHA-256 as S3 checksum and in the metadata."""
    client = s3_client(endpoint)
    try:
        client.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": "eu-west-2"})
    except client.exceptions.BucketAlreadyOwnedByYou:
        pass
    data = path.read_bytes()
    digest = hashlib.sha256(data)
    client.put_object(
        Bucket=bucket,
        Key=key,
        Body=data,
        ContentType="video/mp4" if key.endswith(".mp4") else "image/jpeg",
        ChecksumAlgorithm="SHA256",
        ChecksumSHA256=base64.b64encode(digest.digest()).decode(),
        Metadata={"sha256": digest.hexdigest()},
    )
    return FootageObject(key=key, size=len(data), sha256=digest.hexdigest())


# ---------------------------------------------------------------- protocol bodies and web log-in
def heartbeat_body(unit_id: str, seq: int = 1, **parts: dict) -> dict:
    """A protocol v1 heartbeat of a healthy unit; `parts` replace whole sections."""
    body = {
        "schema": 1, "unit_id": unit_id, "seq": seq, "reason": "interval", "software_version": "0.1.0",
        "clock": {"synced": True, "offset_s": 0.01, "source": "chrony"},
        "camera": {"state": "ok", "fps": 10.0, "restarts": 0},
        "recording": {"state": "recording", "segment_seconds": 10},
        "disk": {"total_bytes": 64 * 1024**3, "free_bytes": 40 * 1024**3, "retention_days": 31,
                 "events_lost": 0},
        "uploads": {"pending": 2, "pending_bytes": 5_000_000, "oldest_pending_age_s": 30, "failed": 0,
                    "held_by_budget": 0},
        "data": {"used_bytes": 2 * 1024**3, "budget_bytes": 10 * 1024**3},
        "system": {"cpu_temp_c": 51.5, "undervoltage": False},
        "modem": {"signal_percent": 70, "operator": "EE", "technology": "lte", "state": "connected"},
        "gps": {"fix": "3d", "lat": 51.7050, "lon": -0.2780},
    }
    body.update(parts)
    return body


def event_body(unit_id: str, stamp: str, objects: dict, state: str = "clip_uploaded", site: str = "") -> dict:
    """A protocol v1 event notification; `stamp` like 20261118T101500.000Z makes the event id."""
    start = f"{stamp[:4]}-{stamp[4:6]}-{stamp[6:8]}T{stamp[9:11]}:{stamp[11:13]}:{stamp[13:]}"
    return {
        "schema": 1, "event_id": f"{unit_id}-{stamp}", "unit_id": unit_id, "site": site,
        "start": start, "end": start, "clip_start": start, "clip_end": start, "peak_score": 0.31,
        "peak_time": start, "boxes": [[0.1, 0.2, 0.05, 0.1]], "clock_synced": True, "previous_event_id": None,
        "state": state, "bucket": BUCKET, "objects": objects,
    }


def footage_key(unit_id: str, stamp: str, name: str) -> str:
    return f"units/{unit_id}/{stamp[:4]}/{stamp[4:6]}/{stamp[6:8]}/{unit_id}-{stamp}/{name}"


CSRF_RE = re.compile(r'name="csrf_token" value="([^"]+)"')


def csrf_from(html: str) -> str:
    match = CSRF_RE.search(html)
    assert match, "no CSRF token on the page"
    return match.group(1)


def login(client, username: str, password: str = "correct horse battery") -> str:  # noqa: S107
    """Log in through the real form (CSRF included); returns the session's CSRF token."""
    token = csrf_from(client.get("/login").get_data(as_text=True))
    answer = client.post("/login", data={"username": username, "password": password, "csrf_token": token})
    assert answer.status_code == 302, answer.get_data(as_text=True)[:300]
    return csrf_from(client.get("/").get_data(as_text=True))


# ---------------------------------------------------------------- a small world of two councils
@dataclass
class World:
    """Two councils, each with a unit that has sent one heartbeat and one event with footage in S3."""

    herts_unit: str
    beds_unit: str
    herts_event: int  # primary keys of the events
    beds_event: int
    clip: FootageObject
    snapshot: FootageObject


def send_event(client, unit, stamp: str, s3: str, clip: Path, snapshot: Path,  # noqa: ANN001
               site: str = "") -> tuple[int, FootageObject, FootageObject]:
    """Put the footage in S3 and announce it over the unit API; returns the event's primary key."""
    snap = put_footage(s3, footage_key(unit.unit_id, stamp, "snapshot.jpg"), snapshot)
    movie = put_footage(s3, footage_key(unit.unit_id, stamp, "clip.mp4"), clip)
    body = event_body(unit.unit_id, stamp, {"snapshot": snap.as_protocol(), "clip": movie.as_protocol()},
                      site=site)
    answer = client.post(f"/api/v1/units/{unit.unit_id}/events", json=body, headers=unit.auth)
    assert answer.status_code == 200, answer.get_data(as_text=True)
    from sqlalchemy import select

    from control_room.db import get_engine, session_scope
    from control_room.models import Event

    with session_scope(get_engine(client.application)) as s:
        pk = s.scalar(select(Event.id).where(Event.event_id == body["event_id"]))
    return pk, movie, snap


def make_world(app, factory, s3: str, clip: Path, snapshot: Path) -> World:  # noqa: ANN001
    client = app.test_client()
    herts = factory.unit("herts-mcu-001", "herts")
    beds = factory.unit("beds-mcu-001", "beds")
    for unit in (herts, beds):
        answer = client.post(f"/api/v1/units/{unit.unit_id}/heartbeat", json=heartbeat_body(unit.unit_id),
                             headers=unit.auth)
        assert answer.status_code == 200, answer.get_data(as_text=True)
    herts_pk, movie, snap = send_event(client, herts, "20261118T101500.000Z", s3, clip, snapshot)
    beds_pk, _, _ = send_event(client, beds, "20261118T101600.000Z", s3, clip, snapshot)
    factory.user("alice", "operator", "herts")
    factory.user("olga", "officer", "herts")
    factory.user("ed", "engineer", "herts")
    factory.user("bob", "operator", "beds")
    factory.user("pat", "admin", None)
    return World(herts.unit_id, beds.unit_id, herts_pk, beds_pk, movie, snap)
