"""Placeholder for the `runner` command; its owner replaces this module.

Kept so the CLI wiring imports on every commit.
"""

import argparse

from agent.errors import AgentError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", help="unit config (TOML)")


def main(args: argparse.Namespace) -> int:
    raise AgentError("not implemented yet")
