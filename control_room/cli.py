"""Placeholder for `cctv-control-room`; the control-room owner replaces this module."""

import sys


def main(argv: list[str] | None = None) -> int:
    print("cctv-control-room: not implemented yet", file=sys.stderr)
    return 2
