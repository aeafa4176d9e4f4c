"""End to end: a real `cctv-agent run` replaying real footage uploads to a real S3 (moto, Object Lock)
and heartbeats to the real control room; in headless Chromium a council admin records a police request
for a time range with no motion event and approves it, the unit uploads the range (upload_range), the
package is built and shared; the police recipient opens the link, enters the emailed code, confirms the
receipt and downloads the zip; verify.py, `sha256sum -c` and the openssl command of VERIFY.txt pass.

Screenshots go to tests/artifacts/ (gitignored); no page may log a console error.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import select

from control_room import create_app
from control_room.config import Settings
from control_room.db import get_engine, session_scope
from control_room.evidence.models import EvidencePackage
from control_room.models import Event, Unit
from tests import waiting
from tests.control_room.web_fixtures import CHROMIUM_ARGS, chromium_path
from tests.evidence.conftest import UNIT, code_from
from tests.evidence.flow import uk, unzip
from tests.evidence.test_package import openssl_line, run, verify_py
from tests.evidence.unitsim import SOURCE_CLIP

if chromium_path() is None:
    pytest.skip("chromium is not installed (run `make system-deps` as root)", allow_module_level=True)

pytestmark = pytest.mark.slow
ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"
PASSWORD = "correct horse battery"  # noqa: S105
WAIT_MS = 20_000

AGENT_CONFIG = """
[unit]
id = "{unit}"
site = "High St north"
data_dir = "{data}"

[camera]
source = "file"
device = "{clip}"
width = 480
height = 360
fps = 10
loop = true
pace = "realtime"

[recording]
segment_seconds = 2
bitrate_kbps = 400

[motion]
sensitivity = 0.0
include_zones = [{{ name = "sky", polygon = [[0.0, 0.0], [0.03, 0.0], [0.03, 0.03]] }}]

[upload]
endpoint_url = "{s3}"
bucket = "{bucket}"
access_key_id = "testing"
monthly_budget_mb = 0
timeout_s = 10

[status]
url = "{url}"
interval_s = 5
timeout_s = 5
gpsd = ""
modem = false
"""


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args: dict) -> dict:
    return {**browser_type_launch_args, "executable_path": chromium_path(), "headless": True,
            "args": CHROMIUM_ARGS}


@pytest.fixture
def app(settings: Settings) -> Iterator[Flask]:
    """The control room on the real clock: the agent records in real time."""
    app = create_app(settings, migrate=True)
    yield app
    get_engine(app).dispose()


def wait_until(check: Callable[[], Any], timeout: float, what: str, proc: subprocess.Popen | None = None,
               log: Path | None = None) -> Any:
    def tail() -> str:
        return log.read_text()[-3000:] if log is not None and log.exists() else ""
    return waiting.wait_until(check, timeout, what, interval=0.2, proc=proc, detail=tail)


def last_segment_end(data: Path) -> float:
    from agent.db import db_path
    from agent.errors import InputError
    from agent.status.cli import read_state

    try:
        states = read_state(db_path(data))[0]
    except InputError:  # the agent is still creating its database
        return 0.0
    row = states.get("recording")
    return float(row.state.get("last_segment_at") or 0) if row is not None else 0.0


@pytest.fixture
def agent(tmp_path: Path, live_server: Any, factory: Any, moto: str, bucket: str) -> Iterator[dict[str, Any]]:
    if not SOURCE_CLIP.exists():
        pytest.skip(f"real footage not found at {SOURCE_CLIP}")
    unit = factory.unit(UNIT, "herts")
    data, config, log_path = tmp_path / "unit-data", tmp_path / "agent.toml", tmp_path / "agent.log"
    config.write_text(AGENT_CONFIG.format(unit=UNIT, data=data, clip=SOURCE_CLIP.resolve(), s3=moto,
                                          bucket=bucket, url=live_server.url))
    env = dict(os.environ, CCTV_STATUS_TOKEN=unit.token, CCTV_S3_SECRET_ACCESS_KEY="testing")
    env.pop("NOTIFY_SOCKET", None)
    exe = Path(sys.executable).with_name("cctv-agent")
    log = log_path.open("w")
    proc = subprocess.Popen([str(exe), "run", "--config", str(config)], cwd=tmp_path, env=env, stdout=log,
                            stderr=subprocess.STDOUT)
    try:
        yield {"proc": proc, "data": data, "log": log_path, "started": time.time()}
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(60)
        finally:
            if proc.poll() is None:
                proc.kill()
            log.close()


def watch_console(page: Any, errors: list[str]) -> None:
    page.on("console", lambda m: errors.append(f"{page.url}: {m.text}") if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(f"{page.url}: {e}"))


def test_request_to_verified_download_with_a_real_unit(app, live_server, factory, agent, moto, bucket, smtp,
                                                        browser, tmp_path) -> None:
    base = live_server.url
    factory.user("admin1", "admin", "herts", PASSWORD)
    proc, data, log = agent["proc"], agent["data"], agent["log"]
    # the unit has been heard from and has recorded past the range asked for
    first = wait_until(lambda: last_segment_end(data), 90, "the first segment", proc, log)
    wait_until(lambda: last_segment_end(data) > first + 8, 60, "8 s more of recording", proc, log)
    with session_scope(get_engine(app)) as s:
        wait_until(lambda: s.scalar(select(Unit.last_seen_at).where(Unit.unit_id == UNIT)), 30, "a heartbeat",
                   proc, log)
    start = datetime.fromtimestamp(first + 2, UTC).replace(microsecond=0)
    end = start + timedelta(seconds=4)
    with session_scope(get_engine(app)) as s:
        events = s.scalars(select(Event).where(Event.start < end, Event.end > start)).all()
        assert events == []  # a range with no motion event: only continuous recording covers it

    ARTIFACTS.mkdir(exist_ok=True)
    errors: list[str] = []
    staff = browser.new_context()
    page = staff.new_page()
    watch_console(page, errors)
    page.set_default_timeout(WAIT_MS)
    page.goto(base + "/login")
    page.fill("#username", "admin1")
    page.fill("#password", PASSWORD)
    page.click("button[type=submit]")
    page.goto(base + "/evidence/new")
    for field, value in {"officer_name": "PC Jane Smith", "officer_force": "Hertfordshire Constabulary",
                         "officer_collar": "4321", "officer_email": "jane.smith@herts.police.invalid",
                         "authorising_name": "Alan Jones", "authorising_rank": "Inspector",
                         "crime_ref": "41/12345/26", "range_start": uk(start), "range_end": uk(end),
                         "reason": "Assault outside the shops; suspect crossed the square"}.items():
        page.fill(f"#{field}", value)
    page.select_option("#lawful_basis", "dpa_sch2_para2")
    page.select_option("#unit_id", UNIT)
    page.screenshot(path=str(ARTIFACTS / "evidence-request-form.png"), full_page=True)
    page.click("#record")
    page.wait_for_selector("#approve")
    page.click("#approve")
    page.wait_for_selector("#progress")

    def complete() -> bool:
        page.reload()
        return "complete" in page.inner_text("#progress")

    wait_until(complete, 90, "the unit to upload the range", proc, log)
    page.screenshot(path=str(ARTIFACTS / "evidence-request-progress.png"), full_page=True)
    page.click("#build")
    page.wait_for_selector("#packages")
    page.fill("#s-days", "7")
    page.click("#share")
    link = page.input_value("#share-url")
    page.screenshot(path=str(ARTIFACTS / "evidence-link-created.png"), full_page=True)
    code = code_from(smtp[1].wait_for(1)[0])

    police = browser.new_context(accept_downloads=True)
    ppage = police.new_page()
    watch_console(ppage, errors)
    ppage.set_default_timeout(WAIT_MS)
    ppage.goto(link)
    ppage.screenshot(path=str(ARTIFACTS / "evidence-share-code.png"), full_page=True)
    ppage.fill("#code", code)
    ppage.click("#open")
    ppage.wait_for_selector("#receipt-form")
    ppage.check("#confirm")
    ppage.click("#confirm-receipt")
    ppage.wait_for_selector("#download")
    ppage.screenshot(path=str(ARTIFACTS / "evidence-share-receipt.png"), full_page=True)
    with ppage.expect_download() as info:
        ppage.click("#download")
    zip_path = tmp_path / "downloaded.zip"
    info.value.save_as(zip_path)

    page.goto(base + "/evidence/register")
    page.wait_for_selector("#register")
    page.screenshot(path=str(ARTIFACTS / "evidence-register.png"), full_page=True)
    register_text = page.inner_text("#register")
    for action in ("request_recorded", "approved", "packaged", "share_created", "share_code", "receipt",
                   "download"):
        assert action in register_text, action
    assert errors == []

    with session_scope(get_engine(app)) as s:
        pkg = s.scalars(select(EvidencePackage)).one()
        import hashlib

        assert hashlib.sha256(zip_path.read_bytes()).hexdigest() == pkg.sha256
    bag = unzip(zip_path, tmp_path / "police")
    masters = sorted((bag / "data" / "master" / UNIT).glob("*/*.mp4"))
    assert masters, "no master segments"
    for m in masters:  # each master is bit for bit the unit's own segment file
        unit_file = next(data.rglob(m.name))
        assert m.read_bytes() == unit_file.read_bytes()
    result = verify_py(bag)
    assert result.returncode == 0 and "VERDICT: PASS" in result.stdout, result.stdout
    assert run(["sha256sum", "-c", "manifest-sha256.txt"], bag).returncode == 0
    signed = run(openssl_line(bag), bag)
    assert signed.returncode == 0 and "Signature Verified Successfully" in signed.stdout
    assert shutil.which("openssl")
