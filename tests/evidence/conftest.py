"""Fixtures for the evidence tests: the control room on SQLite with a real S3 (moto server, versioning
and Object Lock on), a real SMTP server (aiosmtpd), real footage segments and a unit signing key.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email import message_from_bytes
from pathlib import Path
from typing import Any

import boto3
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from flask import Flask

from agent.clock import ManualClock
from control_room import create_app
from control_room.config import Settings
from control_room.db import get_engine
from tests.control_room.conftest import (  # noqa: F401 (migrated_sqlite: a fixture)
    SECRET,
    Factory,
    LiveServer,
    copy_migrated,
    migrated_sqlite,
    serve_in_thread,
)
from tests.evidence.unitsim import SOURCE_CLIP, make_segments

REGION = "eu-west-2"
KEYS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing", "region_name": REGION}
UNIT = "herts-mcu-001"
T0 = datetime(2026, 11, 18, 10, 15, 0, tzinfo=UTC)  # the footage's start; the clock is an hour later


@pytest.fixture(scope="session")
def moto() -> Iterator[str]:
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


def s3(url: str) -> Any:
    return boto3.client("s3", endpoint_url=url, **KEYS)


@pytest.fixture
def bucket(moto: str) -> str:
    """A footage bucket with versioning and Object Lock, as the deployment guide sets it up."""
    name = f"cctv-{uuid.uuid4().hex[:12]}"
    s3(moto).create_bucket(
        Bucket=name, CreateBucketConfiguration={"LocationConstraint": REGION}, ObjectLockEnabledForBucket=True
    )
    return name


@dataclass
class Mailbox:
    messages: list[Any] = field(default_factory=list)
    cond: threading.Condition = field(default_factory=threading.Condition)

    def wait_for(self, count: int, timeout: float = 10.0) -> list[Any]:
        with self.cond:
            assert self.cond.wait_for(lambda: len(self.messages) >= count, timeout), "no email arrived"
            return list(self.messages)


class _Handler:
    def __init__(self, box: Mailbox) -> None:
        self.box = box

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802 (aiosmtpd)
        with self.box.cond:
            self.box.messages.append(message_from_bytes(envelope.content))
            self.box.cond.notify_all()
        return "250 OK"


@pytest.fixture
def smtp() -> Iterator[tuple[int, Mailbox]]:
    """A real SMTP server on a free local port (aiosmtpd)."""
    import socket

    from aiosmtpd.controller import Controller

    box = Mailbox()
    with socket.socket() as sock:  # aiosmtpd needs a concrete port; ask the kernel for a free one
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    controller = Controller(_Handler(box), hostname="127.0.0.1", port=port)
    controller.start()
    yield port, box
    controller.stop()


def code_from(message: Any) -> str:
    import re

    body = message.get_payload(decode=True).decode()
    match = re.search(r"^ {4}([A-Z0-9]{8})\r?$", body, re.M)
    assert match, body
    return match.group(1)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(wall=T0.timestamp() + 3600)


@pytest.fixture
def settings(tmp_path: Path, moto: str, bucket: str, smtp: tuple[int, Mailbox]) -> Settings:
    return Settings(
        instance_dir=tmp_path / "instance",
        database_url=f"sqlite:///{tmp_path / 'cr.db'}",
        secret_key=SECRET,
        s3_endpoint_url=moto,
        s3_bucket=bucket,
        s3_access_key_id="testing",
        s3_secret_access_key="testing",
        smtp_host="127.0.0.1",
        smtp_port=smtp[0],
        smtp_starttls=False,
        evidence_org="Hertfordshire CCTV Partnership",
        map_tile_url="",  # the offline map: street tiles would fail name resolution here (console errors)
    )


@pytest.fixture
def app(settings: Settings, clock: ManualClock, migrated_sqlite: Path) -> Iterator[Flask]:  # noqa: F811
    copy_migrated(migrated_sqlite, settings.resolved_database_url())
    app = create_app(settings, migrate=True, clock=clock)
    app.config["TESTING"] = True
    yield app
    get_engine(app).dispose()


@pytest.fixture
def factory(app: Flask) -> Factory:
    return Factory(get_engine(app))


@pytest.fixture
def live_server(app: Flask) -> Iterator[LiveServer]:
    thread = serve_in_thread(app)
    try:
        yield LiveServer(f"http://127.0.0.1:{thread.port}", app)
    finally:
        thread.stop()


@pytest.fixture(scope="session")
def segments(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    if not SOURCE_CLIP.exists():
        pytest.skip(f"real footage not found at {SOURCE_CLIP} (../shared/data next to the repository)")
    return make_segments(tmp_path_factory.mktemp("segments"), UNIT, T0, count=3)


@pytest.fixture(scope="session")
def other_segments(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    if not SOURCE_CLIP.exists():
        pytest.skip(f"real footage not found at {SOURCE_CLIP}")
    return make_segments(tmp_path_factory.mktemp("other"), "herts-mcu-002", T0, count=1, skip=100)


@pytest.fixture(scope="session")
def unit_key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()
