"""`make demo` as a newcomer meets it: start it, open the printed URL in Chromium, log in as the demo
operator, see an event arrive without a reload and its clip play, press Ctrl-C, and find nothing of
the demo still running or listening.
"""

from __future__ import annotations

import json
import os
import queue
import re
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path

import pytest

from demo.check import CHROMIUM_ARGS, chromium, local_only, play_clip

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / ".." / "shared" / "data"
ARTIFACTS = ROOT / "tests" / "artifacts"

if chromium() is None:
    pytest.skip("chromium is not installed (run `make system-deps` as root)", allow_module_level=True)
if not (DATA / "opencv_vtest_480x360.avi").is_file():
    pytest.skip("sample footage ../shared/data is absent", allow_module_level=True)

pytestmark = pytest.mark.slow


class Output:
    """The demo's stdout, read line by line on a thread; wait_for() a pattern with a deadline."""

    def __init__(self, stream) -> None:  # noqa: ANN001
        self.lines: list[str] = []
        self._q: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._pump, args=(stream,), daemon=True).start()

    def _pump(self, stream) -> None:  # noqa: ANN001
        for raw in stream:
            self._q.put(raw.decode(errors="replace").rstrip("\n"))
        self._q.put(None)

    def drain(self, quiet_s: float, timeout: float) -> None:
        """Take in what the demo prints until it has been quiet for `quiet_s` (at most `timeout`)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                line = self._q.get(timeout=quiet_s)
            except queue.Empty:
                return
            if line is None:
                return
            self.lines.append(line)

    def wait_for(self, pattern: str, timeout: float) -> re.Match[str]:
        deadline = time.monotonic() + timeout
        for line in self.lines:
            if m := re.search(pattern, line):
                return m
        while (left := deadline - time.monotonic()) > 0:
            try:
                line = self._q.get(timeout=left)
            except queue.Empty:
                break
            if line is None:
                break
            self.lines.append(line)
            if m := re.search(pattern, line):
                return m
        raise AssertionError(f"no line matching {pattern!r} in {timeout:.0f} s; output:\n" +
                             "\n".join(self.lines[-40:]))


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def listening(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(1)
        return s.connect_ex(("127.0.0.1", port)) == 0


def processes_mentioning(text: str) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                cmdline = (entry / "cmdline").read_bytes().decode(errors="replace")
            except OSError:
                continue
            if text in cmdline and alive(int(entry.name)):
                found.append(int(entry.name))
    return found


def hung(make: subprocess.Popen[bytes], out: Output, run_dir: Path) -> None:
    """The demo did not stop: ask the supervisor for its threads' stacks, end it, fail with both."""
    state = run_dir / "demo.json"
    if state.is_file():
        try:
            os.kill(json.loads(state.read_text())["supervisor_pid"], signal.SIGUSR1)
        except ProcessLookupError:  # it ended after all; make is what still runs
            pass
    out.drain(quiet_s=3.0, timeout=15.0)
    os.killpg(make.pid, signal.SIGKILL)
    make.wait(30)
    pytest.fail("make demo did not exit within 300 s of Ctrl-C; its output and stacks:\n" +
                "\n".join(out.lines[-120:]))


def test_make_demo_event_arrives_and_plays_then_ctrl_c_leaves_nothing(tmp_path: Path) -> None:
    from playwright.sync_api import sync_playwright

    run_dir = tmp_path / "demo-run"
    # offline map: a test loads nothing from outside this machine (no street-map tiles)
    argv = ["make", "--no-print-directory", "demo", f"DEMO_ARGS=--dir {run_dir} --port 0 --map-tiles offline"]
    make = subprocess.Popen(argv, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            start_new_session=True)
    out = Output(make.stdout)
    try:
        base = out.wait_for(r"control room: (http://127\.0\.0\.1:\d+)", 600).group(1)
        password = out.wait_for(r"^\s+operator\s+(\S+)\s+operator\s", 10).group(1)
        out.wait_for(r"Press Ctrl-C to stop everything", 60)
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=chromium(), headless=True, args=CHROMIUM_ARGS)
            try:
                context = browser.new_context()
                local_only(context)
                page = context.new_page()
                page.goto(base + "/")
                assert "/login" in page.url
                page.fill("#username", "operator")
                page.fill("#password", password)
                page.click("button[type=submit]")
                page.wait_for_url(base + "/")
                page.goto(base + "/events")
                before = set(page.eval_on_selector_all("tr[data-event-id]",
                                                       "rows => rows.map(r => r.dataset.eventId)"))
                page.evaluate("window.__noReload = true")
                new_row = page.wait_for_function(
                    "(seen) => [...document.querySelectorAll('tr[data-event-id]')]"
                    ".find(r => !seen.includes(r.dataset.eventId))", arg=sorted(before), timeout=240_000)
                assert page.evaluate("window.__noReload") is True  # it arrived by the live feed
                href = new_row.as_element().query_selector("a[href^='/events/']").get_attribute("href")
                play_clip(page, base + href, 30_000)
                ARTIFACTS.mkdir(exist_ok=True)
                page.screenshot(path=str(ARTIFACTS / "demo_event.png"), full_page=True)
                page.goto(base + "/")
                page.wait_for_selector("tr[data-unit='sac-mcu-01'][data-online='yes']", timeout=30_000)
                page.screenshot(path=str(ARTIFACTS / "demo_fleet.png"), full_page=True)
            finally:
                browser.close()
        state = json.loads((run_dir / "demo.json").read_text())
    finally:
        if make.poll() is None:
            os.killpg(make.pid, signal.SIGINT)  # what Ctrl-C in the terminal does: the whole foreground group
        # Bounded by the supervisor's own limits (agents 30 s + kill, control room 20 s, links, S3),
        # which a loaded CI machine can use up in full: wait for the exit, not for a guess at it.
        try:
            make.wait(300)
        except subprocess.TimeoutExpired:
            hung(make, out, run_dir)
    out.wait_for(r"stopped: nothing of the demo is running or listening", 5)
    assert [line for line in out.lines if "warning:" in line] == []  # sites, deployments, clean stop
    pids = [state["supervisor_pid"], *state["pids"].values()]
    assert [pid for pid in pids if alive(pid)] == []
    assert [port for port in state["ports"] if listening(port)] == []
    assert processes_mentioning(str(run_dir)) == []
