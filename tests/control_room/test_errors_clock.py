"""One exception root and one clock for the control room (issue 9): every error class it defines
derives from ControlRoomError, and every time it stores comes from the injected clock.
"""

from __future__ import annotations

import ast
import inspect
from pathlib import Path

from sqlalchemy import select

from control_room import errors
from control_room.db import session_scope
from control_room.models import AuditLog, Council, User
from tests.control_room.web_fixtures import login

PACKAGE = Path(__file__).resolve().parents[2] / "control_room"


def _modules() -> list[tuple[Path, ast.Module]]:
    return [(p, ast.parse(p.read_text())) for p in sorted(PACKAGE.rglob("*.py"))]


def test_every_error_class_lives_in_errors_under_one_root():
    for _, cls in inspect.getmembers(errors, inspect.isclass):
        if cls.__module__ == errors.__name__:
            assert issubclass(cls, errors.ControlRoomError), cls
    other_roots = []  # an error class elsewhere (e.g. control_room.evidence) must derive from the root
    for path, tree in _modules():
        if path.name == "errors.py":
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.ClassDef):
                bases = {getattr(b, "id", getattr(b, "attr", "")) for b in node.bases}
                builtin = bases & {"Exception", "ValueError", "RuntimeError", "OSError"}
                if builtin and "ControlRoomError" not in bases:
                    other_roots.append(f"{path.relative_to(PACKAGE)}:{node.name}")
    assert other_roots == []


def test_nothing_but_the_clock_module_reads_the_system_clock():
    readers = []
    for path, tree in _modules():
        if path.name == "clock.py":
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
                owner = getattr(node.func.value, "id", "")
                if (owner, node.func.attr) in {("datetime", "now"), ("datetime", "utcnow"), ("time", "time"),
                                               ("date", "today")}:
                    readers.append(f"{path.relative_to(PACKAGE)}:{node.lineno}")
    assert readers == []


def test_the_injected_clock_stamps_rows_audit_and_logins(app, engine, factory, clock):
    clock.advance(12345.0)
    factory.user("alice", "operator", "herts")
    with session_scope(engine, clock) as s:
        s.add(Council(slug="beds", name="Bedfordshire"))
    client = app.test_client()
    login(client, "alice")
    with session_scope(engine) as s:
        beds = s.scalar(select(Council).where(Council.slug == "beds"))
        alice = s.scalar(select(User).where(User.username == "alice"))
        row = s.scalar(select(AuditLog).where(AuditLog.action == "login"))
    assert beds.created_at == clock.now()
    assert row.at == clock.now() and alice.last_login_at == clock.now()
