"""Test-time Jinja bytecode cache shared by every Flask app in a test process: the suite creates a
control room app per test, and each app's Jinja environment lexed, parsed and compiled its page
templates again on first render.

Jinja's own BytecodeCache hook (jinja2.bccache), kept in memory: a template's compiled code is keyed
by its file and checked against a checksum of its source, so an edited template compiles afresh.
Templates are still loaded, rendered and autoescaped by each app's own environment; every app here
is made by create_app with the same Jinja options, which the compiled code depends on.
"""

from __future__ import annotations

from flask import Flask
from jinja2.bccache import Bucket, BytecodeCache


class MemoryBytecodeCache(BytecodeCache):
    """Compiled templates in a dict, for the life of the process."""

    def __init__(self) -> None:
        self._code: dict[str, bytes] = {}

    def load_bytecode(self, bucket: Bucket) -> None:
        data = self._code.get(bucket.key)
        if data is not None:
            bucket.bytecode_from_string(data)  # ignored (compiled afresh) if the source changed

    def dump_bytecode(self, bucket: Bucket) -> None:
        self._code[bucket.key] = bucket.bytecode_to_string()


def install() -> None:
    """Every Flask app made after this gets the shared cache (idempotent)."""
    if "bytecode_cache" not in Flask.jinja_options:
        Flask.jinja_options = {**Flask.jinja_options, "bytecode_cache": MemoryBytecodeCache()}
