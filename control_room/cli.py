"""`cctv-control-room`: serve the app, migrate the database, create councils, users and units.

Settings come from CONTROL_ROOM_* variables (see docs/control_room.md); a bad input exits 2 with
one line on stderr. A unit's token is printed once, on stdout, and never stored in clear.
"""

from __future__ import annotations

import argparse
import getpass
import logging
import sys
from collections.abc import Callable
from datetime import datetime

from sqlalchemy import Engine, inspect
from sqlalchemy.exc import SQLAlchemyError

from control_room import __version__, cli_users, migrate, provision
from control_room.clock import SYSTEM
from control_room.config import Settings, load_settings
from control_room.db import make_engine, session_scope
from control_room.errors import ControlRoomError, SettingsError
from control_room.instructions import request_upload_range
from protocol.times import parse_aware

log = logging.getLogger("control_room")
EXPECTED = (ControlRoomError, ValueError)


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        settings = load_settings(database_url=args.database_url)
        return int(args.func(args, settings) or 0)
    except EXPECTED as exc:
        print(f"cctv-control-room: {exc}", file=sys.stderr)
        return 2
    except SQLAlchemyError as exc:
        first = str(exc).splitlines()[0]
        hint = " (run `cctv-control-room db upgrade` first)" if _missing_table(first) else ""
        print(f"cctv-control-room: database error: {type(exc).__name__}: {first}{hint}", file=sys.stderr)
        return 2


def _missing_table(message: str) -> bool:
    return "no such table" in message or ("relation" in message and "does not exist" in message)


def _engine(settings: Settings) -> Engine:
    """An engine on a database at the newest schema. An empty database (a first run) gets the schema,
    saying so; one at an older revision is refused with the command that upgrades it (upgrading a
    partnership's database is a decision for its administrator, not a side effect)."""
    engine = make_engine(settings.resolved_database_url(), settings.db_pool_size)
    current, head = migrate.current_revision(engine), migrate.head_revision()
    if current == head:
        return engine
    if current is None and not inspect(engine).get_table_names():
        print("cctv-control-room: the database is empty: creating its schema first (db upgrade)",
              file=sys.stderr)
        migrate.upgrade(engine)
        return engine
    raise SettingsError(f"the database schema is at revision {current or 'none'}, this version needs {head}: "
                        "run `cctv-control-room db upgrade` first")


def cmd_serve(args: argparse.Namespace, settings: Settings) -> int:
    import waitress

    from control_room import create_app

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    app = create_app(settings, migrate=not args.no_migrate, pages=not args.unit_api_only)
    what = ", unit API only" if args.unit_api_only else ""
    log.info("control room %s on http://%s:%d (%s%s)", __version__, args.host, args.port,
             app.extensions["cctv_db"]["engine"].dialect.name, what)
    proxy: dict[str, object] = {}
    if args.trusted_proxy:  # the TLS-terminating reverse proxy says who the client was and that it was https
        proxy = {"trusted_proxy": args.trusted_proxy,
                 "trusted_proxy_headers": {"x-forwarded-for", "x-forwarded-proto"}}
    waitress.serve(app, host=args.host, port=args.port, threads=args.threads, ident="cctv-control-room",
                   clear_untrusted_proxy_headers=True, **proxy)
    return 0


def cmd_db(args: argparse.Namespace, settings: Settings) -> int:
    engine = make_engine(settings.resolved_database_url(), settings.db_pool_size)
    if args.action == "upgrade":
        migrate.upgrade(engine)
    print(f"database at revision {migrate.current_revision(engine)} (newest {migrate.head_revision()})")
    return 0


def cmd_create_council(args: argparse.Namespace, settings: Settings) -> int:
    with session_scope(_engine(settings)) as session:
        provision.create_council(session, args.slug, args.name)
    print(f"council {args.slug} created")
    return 0


def cmd_create_user(args: argparse.Namespace, settings: Settings) -> int:
    password = _read_password(args.password_stdin)
    with session_scope(_engine(settings)) as session:
        user = provision.create_user(session, args.username, args.role, password, args.council)
        where = args.council or "partnership-wide"
    print(f"user {user.username} ({args.role}, {where}) created")
    return 0


def _read_password(from_stdin: bool) -> str:
    if from_stdin or not sys.stdin.isatty():
        return sys.stdin.readline().rstrip("\n")
    first = getpass.getpass("password: ")
    if getpass.getpass("again: ") != first:
        raise ValueError("the two passwords differ")
    return first


def cmd_create_unit(args: argparse.Namespace, settings: Settings) -> int:
    with session_scope(_engine(settings)) as session:
        if args.rotate:
            token = provision.rotate_token(session, args.unit_id)
        elif not args.council:
            raise ValueError("create-unit needs --council (or --rotate for an existing unit)")
        else:
            _, token = provision.create_unit(session, args.unit_id, args.council, args.name)
    print(token)
    print(f"unit {args.unit_id}: token printed once above; store it in the unit's config", file=sys.stderr)
    return 0


def cmd_revoke_unit(args: argparse.Namespace, settings: Settings) -> int:
    with session_scope(_engine(settings)) as session:
        provision.revoke_unit(session, args.unit_id)
    print(f"unit {args.unit_id} revoked")
    return 0


def cmd_request_upload(args: argparse.Namespace, settings: Settings) -> int:
    with session_scope(_engine(settings)) as session:
        unit = provision.get_unit(session, args.unit_id)
        row = request_upload_range(session, unit, _utc_arg(args.start), _utc_arg(args.end))
        print(f"instruction {row.instruction_id} queued for {args.unit_id}")
    return 0


def cmd_prune(args: argparse.Namespace, settings: Settings) -> int:
    from control_room.maintenance import prune

    done = prune(_engine(settings), SYSTEM.now(), settings.sample_retention_days)
    print(f"deleted {done['samples']} chart samples, {done['instructions']} old instructions")
    return 0


def _utc_arg(text: str) -> datetime:
    try:
        return parse_aware(text)
    except ValueError:
        raise ValueError(f"time {text!r} needs a date, time and zone, e.g. 2026-11-28T13:00:00Z") from None


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="cctv-control-room", description=__doc__.splitlines()[0])
    p.add_argument("--version", action="version", version=__version__)
    p.add_argument("--database-url", help="overrides CONTROL_ROOM_DATABASE_URL")
    sub = p.add_subparsers(dest="command", required=True)
    _add(sub, "serve", cmd_serve, "run the web service (waitress)", [
        (("--host",), {"default": "127.0.0.1"}), (("--port",), {"type": int, "default": 8080}),
        (("--threads",), {"type": int, "default": 8}),
        (("--no-migrate",), {"action": "store_true", "help": "do not upgrade the schema at start"}),
        (("--unit-api-only",), {"action": "store_true", "help": "serve /api/v1 only (no pages or log-in): "
                                "run beside a full `serve` and route /api/ here, so units never share "
                                "threads or CPU time with people's requests"}),
        (("--trusted-proxy",), {"help": "address of the TLS-terminating reverse proxy"})])
    _add(sub, "db", cmd_db, "database schema", [(("action",), {"choices": ["upgrade", "current"]})])
    _add(sub, "create-council", cmd_create_council, "add a council", [
        (("slug",), {"help": "short id, e.g. herts"}), (("name",), {"help": "display name"})])
    _add(sub, "create-user", cmd_create_user, "add a person (password read from the terminal or stdin)", [
        (("username",), {}), (("--role",), {"required": True, "choices": ["operator", "officer", "engineer",
                                                                          "admin"]}),
        (("--council",), {"help": "council id; omit only for a partnership-wide admin"}),
        (("--password-stdin",), {"action": "store_true"})])
    cli_users.register(sub, _add)
    _add(sub, "create-unit", cmd_create_unit, "add a unit and print its token once", [
        (("unit_id",), {}), (("--council",), {}), (("--name",), {"default": ""}),
        (("--rotate",), {"action": "store_true", "help": "issue a new token for an existing unit"})])
    _add(sub, "revoke-unit", cmd_revoke_unit, "refuse a (stolen) unit's token from now on",
         [(("unit_id",), {})])
    _add(sub, "prune", cmd_prune, "delete chart samples older than sample_retention_days (run daily)", [])
    _add(sub, "request-upload", cmd_request_upload, "ask a unit for the footage of a time range", [
        (("unit_id",), {}), (("start",), {}), (("end",), {})])
    from control_room.evidence import roles, stores  # police evidence (docs/evidence.md)

    _add(sub, "add-police-store", stores.cmd_add_police_store, "a force's S3 store for evidence packages",
         stores.ARGUMENTS)
    _add(sub, "evidence-roles", roles.cmd_evidence_roles, "roles allowed an evidence action, per council",
         roles.ROLE_ARGUMENTS)
    return p


def _add(sub: argparse._SubParsersAction, name: str, func: Callable[..., int], help_: str,
         arguments: list[tuple[tuple[str, ...], dict[str, object]]]) -> None:
    cmd = sub.add_parser(name, help=help_, description=help_)
    for flags, kwargs in arguments:
        cmd.add_argument(*flags, **kwargs)  # type: ignore[arg-type]
    cmd.set_defaults(func=func)
