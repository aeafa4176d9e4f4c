"""The demo's set-up commands (`cctv-control-room db upgrade`, `create-council`, ...) run one after
another in one process: the same CLI (its argparse, handlers and output), one interpreter start-up.

Each command is the CLI's `main(argv)`, as the console script calls it; a separate process per command
cost ~2 CPU-s of imports each (eleven of them at every demo start). Usage, as the supervisor runs it:
`python -m demo.admin_batch` with a JSON list of {"argv": [...], "stdin": "..."} on stdin; prints a
JSON list of {"argv", "code", "stdout", "stderr"}, and stops at the first command that fails.
"""

from __future__ import annotations

import contextlib
import io
import json
import sys
from typing import Any

from control_room.cli import main


def run_one(argv: list[str], stdin: str) -> dict[str, Any]:
    out, err = io.StringIO(), io.StringIO()
    real_stdin = sys.stdin
    sys.stdin = io.StringIO(stdin)
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                code = main(argv)
            except SystemExit as exc:  # argparse's usage errors
                code = exc.code if isinstance(exc.code, int) else 2
    finally:
        sys.stdin = real_stdin
    return {"argv": argv, "code": code, "stdout": out.getvalue(), "stderr": err.getvalue()}


def run_all(commands: list[dict[str, Any]]) -> list[dict[str, Any]]:
    results = []
    for command in commands:
        results.append(run_one([str(a) for a in command["argv"]], str(command.get("stdin", ""))))
        if results[-1]["code"] != 0:
            break
    return results


if __name__ == "__main__":
    done = run_all(json.load(sys.stdin))
    json.dump(done, sys.stdout)
    sys.exit(0 if done and done[-1]["code"] == 0 else 1)
