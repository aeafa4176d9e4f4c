"""The unit's own HTTPS calls to the control room (heartbeats, event notifications): one small client
on urllib3, which botocore already loads for S3, so `cctv-agent run` does not import requests.

TLS verification is always on: the configured CA bundle, else certifi's (what requests used). No
redirects are followed (a login page or plain http is not a delivery), no proxy or netrc is taken
from the environment, and nothing is retried here: the callers' tenacity schedules do that.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import certifi
import urllib3
from urllib3.exceptions import HTTPError
from urllib3.exceptions import SSLError as _SSLError


class RequestError(Exception):
    """No answer: the connection failed, timed out or was cut (`cause` is the urllib3 error's class name)."""

    def __init__(self, message: str, cause: str, tls: bool = False) -> None:
        super().__init__(message)
        self.cause, self.tls = cause, tls


@dataclass(frozen=True)
class Response:
    status_code: int
    content: bytes

    @property
    def text(self) -> str:
        return self.content.decode("utf-8", "replace")

    def json(self) -> Any:
        """The body as JSON; ValueError if it is not."""
        return json.loads(self.content)


class HttpClient:
    """Pooled keep-alive connections (one pool per host), safe to share between threads."""

    def __init__(self, maxsize: int = 1) -> None:
        self._pools: dict[str, urllib3.PoolManager] = {}
        self._maxsize, self._lock = maxsize, threading.Lock()

    def _pool(self, ca_bundle: Path | None) -> urllib3.PoolManager:
        cafile = str(ca_bundle) if ca_bundle else certifi.where()
        with self._lock:
            pool = self._pools.get(cafile)
            if pool is None:
                pool = self._pools[cafile] = urllib3.PoolManager(
                    num_pools=2, maxsize=self._maxsize, cert_reqs="CERT_REQUIRED", ca_certs=cafile)
            return pool

    def post(self, url: str, *, body: bytes | None = None, json_body: Any = None,
             headers: dict[str, str] | None = None, timeout: float, ca_bundle: Path | None = None
             ) -> Response:
        """POST and read the whole answer; RequestError when there is none. `timeout` bounds the
        connect and each read, as requests' single timeout did."""
        hdrs = dict(headers or {})
        if json_body is not None:
            body = json.dumps(json_body).encode()
            hdrs.setdefault("Content-Type", "application/json")
        try:
            resp = self._pool(ca_bundle).request(
                "POST", url, body=body, headers=hdrs, timeout=urllib3.Timeout(connect=timeout, read=timeout),
                retries=False, redirect=False, preload_content=True)
        except _SSLError as err:
            raise RequestError(str(err), type(err).__name__, tls=True) from None
        except (HTTPError, OSError) as err:
            raise RequestError(str(err), type(err).__name__) from None
        return Response(resp.status, resp.data)

    def close(self) -> None:
        with self._lock:
            for pool in self._pools.values():
                pool.clear()
            self._pools.clear()
