"""The demo partnership in the control room, made the way an administrator would: its CLI for
councils, people and units, then its web forms (as the partnership admin) for sites and deployments.
"""

from __future__ import annotations

import html
import json
import re
import secrets
import subprocess
import sys
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import requests

from demo.units import COUNCILS, UNITS, UnitSpec


@dataclass(frozen=True)
class Login:
    username: str
    role: str
    council: str | None  # None = partnership-wide
    password: str

    def council_args(self) -> list[str]:
        return ["--council", self.council] if self.council else []

    def where(self) -> str:
        return COUNCILS[self.council] if self.council else "whole partnership"


# (username, role, council): a person for every role, and a second council's operator to show scope.
PEOPLE = (
    ("operator", "operator", "stalbans"),
    ("officer", "officer", "stalbans"),
    ("engineer", "engineer", "stalbans"),
    ("admin", "admin", None),
    ("watford-operator", "operator", "watford"),
)


def create_partnership(env: dict[str, str], cwd: Path) -> tuple[list[Login], dict[str, str]]:
    """Migrate, then councils, people (random passwords) and units (tokens): the control room's CLI
    commands, run in one process (demo.admin_batch) in the order an administrator types them."""
    logins = [Login(username, role, council, secrets.token_urlsafe(9))  # 12 characters, printed once
              for username, role, council in PEOPLE]
    commands: list[dict[str, object]] = [{"argv": ["db", "upgrade"]}]
    commands += [{"argv": ["create-council", slug, name]} for slug, name in COUNCILS.items()]
    commands += [{"argv": ["create-user", x.username, "--role", x.role, "--password-stdin",
                           *x.council_args()], "stdin": x.password + "\n"} for x in logins]
    commands += [{"argv": ["create-unit", spec.unit_id, "--council", spec.council, "--name", spec.site]}
                 for spec in UNITS]
    done = subprocess.run([sys.executable, "-m", "demo.admin_batch"], input=json.dumps(commands),
                          capture_output=True, text=True, env=env, cwd=cwd, timeout=300, check=False)
    try:
        results = json.loads(done.stdout)
    except ValueError:
        raise RuntimeError(f"control room set-up failed ({done.returncode}): {done.stderr.strip()[-500:]}") \
            from None
    failed = [r for r in results if r["code"] != 0]
    if failed or len(results) != len(commands):
        r = failed[0] if failed else {"argv": ["?"], "code": done.returncode, "stderr": done.stderr}
        raise RuntimeError(f"cctv-control-room {' '.join(r['argv'][:2])}... failed ({r['code']}): "
                           f"{(r['stderr'] or r.get('stdout', '')).strip()[-500:]}")
    tokens = {r["argv"][1]: r["stdout"].strip().splitlines()[-1]
              for r in results if r["argv"][0] == "create-unit"}
    return logins, tokens


class WebSession:
    """A logged-in browser-like session (cookies, CSRF token from each page)."""

    def __init__(self, base: str, login: Login) -> None:
        self.base = base
        self.http = requests.Session()
        page = self.http.get(f"{base}/login", timeout=10)
        answer = self.http.post(f"{base}/login", data={"username": login.username, "password": login.password,
                                                       "csrf_token": _csrf(page.text)}, timeout=10)
        if "/login" in answer.url:
            raise RuntimeError(f"could not log in as {login.username}")

    def get(self, path: str) -> requests.Response:
        answer = self.http.get(self.base + path, timeout=15)
        answer.raise_for_status()
        return answer

    def post_form(self, page: str, action: str, fields: dict[str, str]) -> str:
        token = _csrf(self.get(page).text)
        answer = self.http.post(self.base + action, data={**fields, "csrf_token": token}, timeout=15)
        answer.raise_for_status()
        return answer.text


def _csrf(page: str) -> str:
    m = re.search(r'name="csrf_token" value="([^"]+)"', page)
    if not m:
        raise RuntimeError("no CSRF token on the page")
    return html.unescape(m.group(1))


def _option(page: str, select: str, label: str) -> str:
    block = re.search(rf'<select name="{select}">(.*?)</select>', page, re.S)
    if block:
        for value, text in re.findall(r'<option value="([^"]*)"[^>]*>([^<]*)</option>', block.group(1)):
            if html.unescape(text).strip() == label:
                return html.unescape(value)
    raise RuntimeError(f"no {label!r} in the {select} list")


def _site_id(page: str, name: str) -> str:
    for site_id, text in re.findall(r'href="/locations/sites/(\d+)">([^<]*)</a>', page):
        if html.unescape(text).strip() == name:
            return site_id
    raise RuntimeError(f"site {name!r} not listed")


def deploy_units(base: str, admin: Login, units: tuple[UnitSpec, ...] = UNITS) -> None:
    """Each unit's site and an open deployment, through the locations page as the partnership admin."""
    web = WebSession(base, admin)
    review = (datetime.now(UTC) + timedelta(days=90)).date().isoformat()
    for spec in units:
        page = web.get("/locations").text
        web.post_form("/locations", "/locations/sites", {
            "council_id": _option(page, "council_id", COUNCILS[spec.council]), "name": spec.site,
            "address": spec.address, "lat": f"{spec.lat:.6f}", "lon": f"{spec.lon:.6f}"})
        page = web.get("/locations").text
        web.post_form("/locations", "/locations/deploy", {
            "unit_id": spec.unit_id, "site_id": _site_id(page, spec.site),
            "purpose": "Demonstration: anti-social behaviour and fly-tipping",
            "dpia_ref": "DPIA-DEMO-001", "signage_confirmed": "yes", "review_date": review})


def control_room_env(run_dir: Path, s3_url: str, heartbeat_s: float,
                     base_env: dict[str, str]) -> dict[str, str]:
    """CONTROL_ROOM_* settings: its own folder (database, key) under the run folder, S3 for playback."""
    from demo.units import BUCKET, PREFIX, REGION, S3_KEYS

    folder = run_dir / "control_room"
    folder.mkdir(parents=True, exist_ok=True)
    return {**base_env,
            "CONTROL_ROOM_INSTANCE_DIR": str(folder),
            "CONTROL_ROOM_DATABASE_URL": f"sqlite:///{folder / 'control_room.db'}",
            "CONTROL_ROOM_S3_ENDPOINT_URL": s3_url,
            "CONTROL_ROOM_S3_REGION": REGION,
            "CONTROL_ROOM_S3_BUCKET": BUCKET,
            "CONTROL_ROOM_S3_PREFIX": PREFIX,
            "CONTROL_ROOM_S3_ACCESS_KEY_ID": S3_KEYS["access_key_id"],
            "CONTROL_ROOM_S3_SECRET_ACCESS_KEY": S3_KEYS["secret_access_key"],
            "CONTROL_ROOM_HEARTBEAT_INTERVAL_S": str(int(heartbeat_s)),
            "CONTROL_ROOM_WEB_POLL_S": "2"}
