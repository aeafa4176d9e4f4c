"""TLS is verified on every heartbeat: a control room with a certificate the unit cannot verify (an
unknown CA, the wrong host name) gets nothing; with the unit's CA bundle it gets the heartbeat."""

from __future__ import annotations

import ssl
from pathlib import Path

import pytest

from agent.errors import ConfigError, TransientError
from agent.status.heartbeat import HeartbeatClient, encode
from tests.status.conftest import ControlRoom, make_config
from tests.status.tls import make_chain


@pytest.fixture
def tls_room(tmp_path: Path):
    root, chain, key, _ = make_chain(tmp_path)
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(chain, key)
    room = ControlRoom(tls=ctx).start()
    yield room, root
    room.stop()


def post(tmp_path: Path, url: str, ca: Path | None) -> None:
    status = {"ca_bundle": str(ca)} if ca else {}
    cfg = make_config(tmp_path, url, status=status)
    client = HeartbeatClient(cfg.status, cfg.unit.id)
    try:
        client.post(encode({"schema": 1, "unit_id": cfg.unit.id}))
    finally:
        client.close()


def test_verified_with_the_units_ca_bundle(tmp_path: Path, tls_room) -> None:
    room, root = tls_room
    post(tmp_path, room.url, root)
    assert len(room.received) == 1 and room.received[0]["unit_id"] == "herts-mcu-001"


@pytest.mark.parametrize("case", ["unknown_ca", "wrong_host"])
def test_unverifiable_certificate_gets_nothing(tmp_path: Path, tls_room, case: str) -> None:
    room, root = tls_room
    url = room.url if case == "unknown_ca" else room.url.replace("127.0.0.1", "localhost")
    with pytest.raises(TransientError, match="TLS verification failed"):
        post(tmp_path, url, None if case == "unknown_ca" else root)
    assert room.received == []


@pytest.mark.parametrize("url", ["http://cctv.example.gov.uk", "ftp://127.0.0.1", "http://127.0.0.1.evil.org"])
def test_plain_http_is_refused_by_the_config(tmp_path: Path, url: str) -> None:
    with pytest.raises(ConfigError, match="status.url"):
        make_config(tmp_path, url)
