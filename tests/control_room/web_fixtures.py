"""Fixtures for the control room web tests: real footage made into a browser-playable clip, a real S3.

Imported by tests/control_room/test_web_*.py and test_browser.py; nothing here is faked.
"""

from __future__ import annotations

import base64
import hashlib
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
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]


def chromium_path() -> str | None:
    return shutil.which("chromium")


def make_clip(out: Path, seconds: float = 8.0) -> Path:
    """Re-encode the start of real footage as H.264 yuv420p MP4 with the index first (faststart)."""
    import av

    if not SOURCE_CLIP.exists():
        pytest.skip(f"real footage not found at {SOURCE_CLIP} (../shared/data next to the repository)")
    with av.open(str(SOURCE_CLIP)) as src, av.open(str(out), "w", format="mp4",
                                                    options={"movflags": "faststart"}) as dst:
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


def s3_client(endpoint: str):
    import boto3

    return boto3.client("s3", endpoint_url=endpoint, **S3_KEYS)


def put_footage(endpoint: str, key: str, path: Path, bucket: str = BUCKET) -> FootageObject:
    """Upload a file the way a unit does: SHA-256 checksum on the object and in its metadata."""
    client = s3_client(endpoint)
    try:
        client.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": "eu-west-2"})
    except client.exceptions.BucketAlreadyOwnedByYou:
        pass
    data = path.read_bytes()
    digest = hashlib.sha256(data)
    client.put_object(Bucket=bucket, Key=key, Body=data, ChecksumSHA256=base64.b64encode(digest.digest()).decode(),
                      Metadata={"sha256": digest.hexdigest()})
    return FootageObject(key=key, size=len(data), sha256=digest.hexdigest())
