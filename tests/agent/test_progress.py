"""Progress of long commands: a bar redrawn in place on a terminal, plain lines at most every
`every_s` seconds otherwise (logs, CI), always a final line."""

from __future__ import annotations

import io

from agent.progress import Progress


class Tick:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


def test_on_a_terminal_the_bar_is_redrawn_in_place() -> None:
    out, clock = io.StringIO(), Tick()
    p = Progress(2_000_000, "draining u1", unit="B", stream=out, tty=True, clock=clock)
    for done in (0, 500_000, 2_000_000):
        clock.t += 1
        p.update(done)
    p.close("drained")
    text = out.getvalue()
    assert text.count("\r\033[K") == 4 and text.endswith("drained\n")
    assert "[#######.......................]  25% 500.0 kB of 2.0 MB 2 s" in text
    assert "[##############################] 100% 2.0 MB of 2.0 MB" in text


def test_in_a_log_lines_are_plain_and_rate_limited() -> None:
    out, clock = io.StringIO(), Tick()
    p = Progress(100, "detect clip.mp4", unit="frames", stream=out, tty=False, every_s=10, clock=clock)
    for step in range(1, 31):  # 30 s of updates, one a second
        clock.t = step
        p.update(step * 3)
    p.close()
    lines = out.getvalue().splitlines()
    assert "\r" not in out.getvalue() and "\033" not in out.getvalue()
    assert len(lines) == 4  # at 10 s, 20 s, 30 s and the final line
    assert lines[0] == "detect clip.mp4 [#########.....................]  30% 30 frames of 100 frames 10 s"
    assert lines[-1].startswith("detect clip.mp4 [###########################...]  90% 90 frames")


def test_a_short_job_prints_nothing_unless_its_last_line_is_the_result() -> None:
    out, clock = io.StringIO(), Tick()
    p = Progress(100, "detect short.mp4", unit="frames", stream=out, tty=False, every_s=10, clock=clock)
    clock.t = 3
    p.update(100)
    p.close()
    assert out.getvalue() == ""
    p.close("drained", always=True)
    bar = "[" + "#" * 30 + "]"
    assert out.getvalue() == f"detect short.mp4 {bar} 100% 100 frames of 100 frames 3 s  drained\n"


def test_unknown_total_shows_counts_only() -> None:
    out = io.StringIO()
    p = Progress(0, "uploads", unit="B", stream=out, tty=False, every_s=0, clock=lambda: 5.0)
    p.update(1500)
    assert out.getvalue() == "uploads: 1.5 kB, 0 s\n"


def test_an_abandoned_bar_is_cleared_from_the_terminal() -> None:
    out = io.StringIO()
    p = Progress(10, "detect", stream=out, tty=True, clock=lambda: 0.0)
    p.update(5)
    p.abandon()
    assert out.getvalue().endswith("\r\033[K")
