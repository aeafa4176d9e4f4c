"""Real servers for tests on loopback: a free port, and a moto S3/IAM server in its own process.

Tests run in parallel (pytest-xdist) beside other work, so a probed port may be taken before the
server binds it: the server is started again on another port instead of failing the test.
"""

from __future__ import annotations

import socket
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
import requests

from tests.waiting import wait_until


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _up(url: str) -> bool:
    try:
        return requests.get(f"{url}/moto-api/", timeout=1).status_code < 500
    except requests.RequestException:
        return False


@contextmanager
def moto_process(tries: int = 5, timeout: float = 60.0) -> Iterator[str]:
    """A moto server (`python -m moto.server`) in its own process (IAM auth state is per process);
    yields its URL and stops it afterwards."""
    for attempt in range(tries):
        port = free_port()
        proc = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        url = f"http://127.0.0.1:{port}"
        try:
            wait_until(lambda u=url, p=proc: p.poll() is None and _up(u), timeout, "moto server", proc=proc)
        except AssertionError:
            proc.kill()
            proc.wait(10)
            if attempt == tries - 1:
                raise
            continue  # the port was taken meanwhile: another one
        try:
            yield url
        finally:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)
        return


@pytest.fixture(scope="session")
def worker_moto() -> Iterator[str]:
    """This worker's moto process for the tests that switch IAM enforcement on: each takes it through
    fresh_moto() rather than starting its own (~2 s of CPU and a second or more of start-up each)."""
    with moto_process() as url:
        yield url


def fresh_moto(url: str) -> str:
    """The server back in a new one's state: IAM enforcement off, then every backend emptied
    (buckets, objects, users, keys, policies)."""
    requests.post(f"{url}/moto-api/reset-auth", data=b"inf", timeout=10).raise_for_status()
    requests.post(f"{url}/moto-api/reset", timeout=30).raise_for_status()
    return url
