"""`cctv-agent` command line: parses arguments, wires the stages explicitly, maps errors to exit codes.

Each subcommand lives in the module of its concern, which provides add_arguments(parser) and
main(args) -> int; an AgentError becomes one line on stderr and exit status 2, never a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys

from agent import __version__
from agent.errors import AgentError
from agent.memory import limit_math_threads, optimized_argv

# subcommand -> (module, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "run": ("agent.runner", "run the unit: record, detect, cut events, upload, report status"),
    "detect": ("agent.detect", "run the detector and event logic over a video file (site tuning)"),
    "uploads": ("agent.upload.cli", "show the upload queue"),
    "status": ("agent.status.cli", "show the unit's current state"),
}


def build_parser(argv: list[str] | None = None) -> argparse.ArgumentParser:
    """The full parser; given the command line, only the chosen subcommand's module is imported
    (`run` on a unit never loads what `uploads` or `status` need, and the other way round)."""
    parser = argparse.ArgumentParser(prog="cctv-agent", description="mobile-cctv unit agent")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True)
    # The top-level options take no value, so the first other word is the subcommand.
    chosen = next((a for a in argv or [] if not a.startswith("-")), None)
    for name, (module, help_text) in COMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        if chosen in COMMANDS and name != chosen:
            continue
        mod = importlib.import_module(module)
        mod.add_arguments(p)
        p.set_defaults(_main=mod.main)
    return parser


def main(argv: list[str] | None = None) -> int:
    """The command line (argv None: sys.argv); `run` from the command line re-executes itself
    under python -OO first (agent/memory.py; a caller passing argv keeps its own interpreter)."""
    from_command_line, argv = argv is None, sys.argv[1:] if argv is None else argv
    run = next((a for a in argv if not a.startswith("-")), None) == "run"
    if run and from_command_line and (again := optimized_argv(argv)):
        sys.stdout.flush(), sys.stderr.flush()
        os.execv(again[0], again)  # noqa: S606 - same process id: systemd, sdnotify, pid files unaffected
    if run:
        limit_math_threads()  # before build_parser imports NumPy (agent/memory.py)
    parser = build_parser(argv)
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        return int(args._main(args) or 0)
    except AgentError as err:
        print(f"cctv-agent {args.command}: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
