"""Progress of long-running commands (`detect` on a long file, `uploads --drain`, benchmarks).

On a terminal: one bar redrawn in place; otherwise (a log file, CI, journald): a plain line every
`every_s` seconds (none for a job shorter than that) and one at the end, so logs stay readable.
Writes to stderr; no dependencies.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import TextIO

WIDTH = 30


def _fmt(n: float, unit: str) -> str:
    if unit != "B":
        return f"{n:.0f}{unit and ' ' + unit}"
    for u in ("B", "kB", "MB", "GB"):
        if abs(n) < 1000 or u == "GB":
            return f"{n:.0f} {u}" if u == "B" else f"{n:.1f} {u}"
        n /= 1000
    return f"{n:.1f} GB"


class Progress:
    """Progress(total, label).update(done) ... .close(); total 0 = unknown (no bar, just counts)."""

    def __init__(self, total: float, label: str, unit: str = "", stream: TextIO | None = None,
                 every_s: float = 10.0, tty: bool | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.total, self.label, self.unit = total, label, unit
        self.stream = stream if stream is not None else sys.stderr
        self.tty = self.stream.isatty() if tty is None else tty
        self.every_s, self.clock = every_s, clock
        self.start = clock()
        self.done = 0.0
        self.detail = ""  # when set, shown instead of "done of total" (e.g. "3/9 upload, 4 min left")
        self._last_line = self.start  # the first plain line after every_s: short jobs stay quiet
        self._drawn = False

    def text(self) -> str:
        elapsed = self.clock() - self.start
        count = self.detail or f"{_fmt(self.done, self.unit)} of {_fmt(self.total, self.unit)}"
        if self.total > 0:
            frac = max(0.0, min(1.0, self.done / self.total))
            bar = "#" * int(frac * WIDTH) + "." * (WIDTH - int(frac * WIDTH))
            return f"{self.label} [{bar}] {frac * 100:3.0f}% {count} {elapsed:.0f} s"
        return f"{self.label}: {self.detail or _fmt(self.done, self.unit)}, {elapsed:.0f} s"

    def update(self, done: float, total: float | None = None) -> None:
        self.done = done
        if total is not None:
            self.total = total
        now = self.clock()
        if self.tty:
            self.stream.write("\r\033[K" + self.text())
            self.stream.flush()
            self._drawn = True
        elif now - self._last_line >= self.every_s:
            self._last_line = now
            self._drawn = True
            print(self.text(), file=self.stream, flush=True)

    def close(self, final: str = "", always: bool = False) -> None:
        """The last state on its own line (a finished bar stays on screen); a job that never showed
        progress adds nothing unless `always` (when the line is the command's result)."""
        if not (self._drawn or always):
            return
        line = self.text() + (f"  {final}" if final else "")
        if self.tty:
            self.stream.write("\r\033[K" + line + "\n")
            self.stream.flush()
        else:
            print(line, file=self.stream, flush=True)

    def abandon(self) -> None:
        """The job failed: clear a bar from the terminal so the error line stands alone."""
        if self.tty and self._drawn:
            self.stream.write("\r\033[K")
            self.stream.flush()
