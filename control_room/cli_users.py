"""`cctv-control-room` user administration: list-users, disable-user, enable-user, reset-password,
set-role. The same rules and audit rows as the admin page (control_room.users); actor "cli".
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import Any

from control_room import users
from control_room.clock import SYSTEM
from control_room.config import Settings
from control_room.db import make_engine, session_scope
from control_room.hashing import hash_password
from control_room.models import Role

LINK_PATH = "/account/set-password/"


def _scope(settings: Settings) -> Any:
    return session_scope(make_engine(settings.resolved_database_url(), settings.db_pool_size))


def _link(token: str) -> None:
    print(f"{LINK_PATH}{token}")
    print("one-time link printed above (valid 72 hours): prefix it with the control room's address",
          file=sys.stderr)


def cmd_list(args: argparse.Namespace, settings: Settings) -> int:
    with _scope(settings) as db:
        for u in users.listing(db, None):
            state = "disabled" if not u.active else "must-change" if u.must_change_password else "active"
            last = u.last_login_at.isoformat(timespec="seconds") if u.last_login_at else "never"
            council = u.council.slug if u.council else "partnership"
            print(f"{u.username}\t{u.role.value}\t{council}\t{state}\t{last}")
    return 0


def cmd_active(args: argparse.Namespace, settings: Settings) -> int:
    with _scope(settings) as db:
        users.set_active(db, None, args.username, args.enable, SYSTEM.now())
    print(f"user {args.username} {'enabled' if args.enable else 'disabled (sessions ended)'}")
    return 0


def cmd_reset(args: argparse.Namespace, settings: Settings) -> int:
    temporary = None
    if args.temporary_stdin:
        password = users.check_password_rules(sys.stdin.readline().rstrip("\n"))
        temporary = hash_password(password)
    with _scope(settings) as db:
        _, token = users.reset_password(db, None, args.username, temporary, SYSTEM.now())
    if token:
        _link(token)
    else:
        print(f"user {args.username} has a temporary password; it must be changed at the next log-in")
    return 0


def cmd_role(args: argparse.Namespace, settings: Settings) -> int:
    with _scope(settings) as db:
        users.set_role(db, None, args.username, args.role, args.council, SYSTEM.now())
    print(f"user {args.username} is now {args.role} ({args.council or 'partnership-wide'}); sessions ended")
    return 0


def cmd_invite(args: argparse.Namespace, settings: Settings) -> int:
    with _scope(settings) as db:
        _, token = users.create(db, None, args.username, args.role, args.council, None, SYSTEM.now())
    _link(token or "")
    return 0


Adder = Callable[[Any, str, Callable[..., int], str, list[tuple[tuple[str, ...], dict[str, object]]]], None]


def register(sub: Any, add: Adder) -> None:
    roles = [r.value for r in Role]
    add(sub, "list-users", cmd_list, "everyone: role, council, state, last log-in", [])
    add(sub, "invite-user", cmd_invite, "add a person and print a one-time link to set their password", [
        (("username",), {}), (("--role",), {"required": True, "choices": roles}), (("--council",), {})])
    add(sub, "disable-user", cmd_active, "stop a person logging in; ends their sessions at once",
        [(("username",), {}), (("--enable",), {"action": "store_const", "const": False, "default": False})])
    add(sub, "enable-user", cmd_active, "let a disabled person log in again",
        [(("username",), {}), (("--enable",), {"action": "store_const", "const": True, "default": True})])
    add(sub, "reset-password", cmd_reset, "one-time link (default) or a temporary password from stdin", [
        (("username",), {}), (("--temporary-stdin",), {"action": "store_true"})])
    add(sub, "set-role", cmd_role, "change a person's role and council (ends their sessions)", [
        (("username",), {}), (("--role",), {"required": True, "choices": roles}), (("--council",), {})])
