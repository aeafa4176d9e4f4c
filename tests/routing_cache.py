"""Test-time cache of Werkzeug's compiled URL builders: the suite creates a control room app
(create_app) per test, several hundred in all, and each compiled the same ~100 builders again.

Werkzeug's Rule.compile() turns every rule into two small Python functions (url_for's builders) by
building an AST and compile()-ing it: 46 of create_app's 75 ms of CPU. A builder is a pure function
of the rule's parsed form (its trace; converters and query encoding are reached through the rule it
is bound to at call time), so rules with the same trace share one, compiled once per process.
Rules with defaults (resolved to constants inside the code) are compiled as before. Routing, URL
building and the app itself are Werkzeug's and Flask's own; only the repeated compile is saved.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from werkzeug.routing.rules import Rule

_compiled: dict[tuple[Any, ...], Callable[..., tuple[str, str]]] = {}
_original = getattr(Rule, "_compile_builder", None)  # Werkzeug's private method (3.x): none, no cache


def _compile_builder_once(self: Rule, append_unknown: bool = True) -> Callable[..., tuple[str, str]]:
    if self.defaults:
        return _original(self, append_unknown)
    key = (self.rule, tuple(self._trace), append_unknown)
    builder = _compiled.get(key)
    if builder is None:
        builder = _compiled[key] = _original(self, append_unknown)
    return builder


def install() -> None:
    """Share the builders in this process (idempotent); a Werkzeug without that method is left alone,
    so an upgrade costs only the saving, never the suite."""
    if _original is not None:
        Rule._compile_builder = _compile_builder_once  # type: ignore[method-assign]
