"""`cctv-provision`: the administrator's and field engineer's command for units' identities, the
footage bucket and on-site commissioning; one line on stderr and exit status 2 for any bad input.

Settings: CCTV_PROVISION_* variables or the options below; administrator credentials from boto3's
chain (AWS_*); the vault password from CCTV_VAULT_PASSWORD_FILE or CCTV_VAULT_PASSWORD.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from datetime import datetime

from sqlalchemy.exc import SQLAlchemyError

from control_room import names
from control_room import provision as cr
from protocol.times import parse_aware
from provisioning import bucket, units
from provisioning.settings import ProvisionError, Settings, load

EXPECTED = (ProvisionError, cr.ProvisionError, names.BadName, ValueError)


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        settings = load(**{k: getattr(args, k) for k in (
            "inventory", "bucket", "prefix", "region", "s3_endpoint_url", "iam_endpoint_url", "database_url",
            "control_room_url", "retention_days", "vault_password_file")})
        return int(args.func(args, settings) or 0)
    except EXPECTED as exc:
        print(f"cctv-provision: {_line(exc)}", file=sys.stderr)
        return 2
    except SQLAlchemyError as exc:
        print(f"cctv-provision: control room database error: {type(exc).__name__}: {_line(exc)}",
              file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


def _line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _utc(text: str) -> datetime:
    try:
        return parse_aware(text)
    except ValueError as err:
        raise ProvisionError(f"time {text!r}: {err}, e.g. 2026-11-28T13:00:00Z") from None


def cmd_unit_add(args: argparse.Namespace, settings: Settings) -> int:
    key = units.add(settings, args.unit_id, args.council, args.site or "", args.host or "")
    print(f"unit {args.unit_id} created: storage user, control room record, signing key "
          f"{key.fingerprint[:16]}..., inventory {settings.inventory / 'host_vars' / args.unit_id}")
    print(f"next: ansible-playbook -i {settings.inventory} ansible/site.yml --limit {args.unit_id}")
    return 0


def _age(seconds: float | None) -> str:
    if seconds is None:
        return "never"
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{seconds / size:.0f} {unit} ago"
    return f"{seconds:.0f} s ago"


def cmd_unit_list(args: argparse.Namespace, settings: Settings) -> int:
    rows = units.list_units(settings)
    print(f"{'unit':<24} {'council':<14} {'state':<8} {'keys':>4} {'key age':>9}  last heartbeat")
    for r in rows:
        age = f"{r.key_age_days:.1f} d" if r.key_age_days is not None else "-"
        seen = _age(r.last_heartbeat_age_s)
        print(f"{r.unit_id:<24} {r.council:<14} {r.state:<8} {r.keys:>4} {age:>9}  {seen}")
    return 0


def cmd_unit_retire(args: argparse.Namespace, settings: Settings) -> int:
    units.retire(settings, args.unit_id)
    print(f"unit {args.unit_id} retired: token revoked, storage user deleted, inventory entry removed")
    return 0


def cmd_unit_stolen(args: argparse.Namespace, settings: Settings) -> int:
    keys, flagged = units.stolen(settings, args.unit_id, _utc(args.since))
    print(f"unit {args.unit_id} cut off: token revoked, {keys} storage key(s) deleted, "
          f"{flagged} event(s) since {args.since} flagged outside the chain of custody")
    return 0


def cmd_unit_rotate(args: argparse.Namespace, settings: Settings) -> int:
    r = units.rotate(settings, args.unit_id, finish=args.finish)
    if r.finished:
        print(f"unit {args.unit_id}: old key {r.old_key_id} deleted; {r.new_key_id} is the only key")
    else:
        print(f"unit {args.unit_id}: new key {r.new_key_id} in the vault (old {r.old_key_id} still works); "
              f"run ansible-playbook site.yml --limit {args.unit_id}, then --finish")
    return 0


def cmd_unit_wait(args: argparse.Namespace, settings: Settings) -> int:
    age = units.wait_heartbeat(settings, args.unit_id, args.timeout, args.max_age)
    print(f"unit {args.unit_id}: heartbeat received {age:.0f} s ago")
    return 0


def cmd_bucket_setup(args: argparse.Namespace, settings: Settings) -> int:
    for item, state in bucket.setup(settings):
        print(f"{settings.bucket}: {item}: {state}")
    return 0


def cmd_verify(args: argparse.Namespace, settings: Settings) -> int:
    from provisioning import verify

    return verify.main(args, settings)


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="cctv-provision", description=__doc__.splitlines()[0])
    _settings_options(p, None)
    sub = p.add_subparsers(dest="command", required=True)
    unit = sub.add_parser("unit", help="units' identities and credentials").add_subparsers(dest="action",
                                                                                        required=True)
    _add(unit, "add", cmd_unit_add, "create a unit everywhere (storage, control room, inventory) or nowhere",
         [(("unit_id",), {}), (("--council",), {"required": True}), (("--site",), {}),
          (("--host",), {"help": "address Ansible reaches the unit at (default: the unit id)"})])
    _add(unit, "list", cmd_unit_list, "units with credential age and last heartbeat", [])
    _add(unit, "retire", cmd_unit_retire, "decommission a unit", [(("unit_id",), {})])
    _add(unit, "stolen", cmd_unit_stolen, "cut a stolen unit off now and flag its events since TIME",
         [(("unit_id",), {}), (("--since",), {"required": True, "help": "UTC time, e.g. 2026-11-28T13:00Z"})])
    _add(unit, "rotate-credentials", cmd_unit_rotate, "new storage key; --finish deletes the old one",
         [(("unit_id",), {}), (("--finish",), {"action": "store_true"})])
    _add(unit, "wait-heartbeat", cmd_unit_wait, "wait until the control room has a recent heartbeat", [
        (("unit_id",), {}), (("--timeout",), {"type": float, "default": 300.0, "help": "seconds"}),
        (("--max-age",), {"type": float, "default": 120.0, "help": "seconds a heartbeat counts as recent"})])
    bucket_p = sub.add_parser("bucket", help="the central footage bucket").add_subparsers(dest="action",
                                                                                       required=True)
    _add(bucket_p, "setup", cmd_bucket_setup,
         "create or check the bucket (versioning, lock, lifecycle...)", [])
    _add(sub, "verify", cmd_verify, "commissioning check of a unit on site", [
        (("unit_id",), {}), (("--engineer",), {"default": ""}),
        (("--radius-m",), {"type": float, "default": 100.0, "help": "GPS must be this close to the site"}),
        (("--max-heartbeat-age-s",), {"type": float, "default": 180.0}),
        (("--event-since",), {"help": "test event must start after this UTC time (default: 15 min ago)"}),
        (("--no-record",), {"action": "store_true", "help": "do not save the commissioning record"})])
    return p


SETTINGS_OPTIONS = (
    ("--inventory", "Ansible inventory folder (default ansible/inventory)"),
    ("--bucket", "footage bucket (default cctv-footage)"),
    ("--prefix", "units write under PREFIX/ID/ (default units)"),
    ("--region", "S3 region (default eu-west-2)"),
    ("--s3-endpoint-url", "S3-compatible endpoint; omit for AWS"),
    ("--iam-endpoint-url", "IAM endpoint (default: the S3 endpoint)"),
    ("--database-url", "control room database (default CONTROL_ROOM_DATABASE_URL)"),
    ("--control-room-url", "control room base URL the units report to"),
    ("--retention-days", "footage retention (default 31)"),
    ("--vault-password-file", "0600 file with the vault password"),
)


def _settings_options(p: argparse.ArgumentParser, default: object) -> None:
    """Accepted before or after the subcommand (after it, an unset option leaves the earlier value)."""
    g = p.add_argument_group("settings (else CCTV_PROVISION_<NAME> variables)")
    for opt, help_ in SETTINGS_OPTIONS:
        g.add_argument(opt, help=help_, default=default)


def _add(sub: argparse._SubParsersAction, name: str, func: Callable[..., int], help_: str,
         arguments: list[tuple[tuple[str, ...], dict[str, object]]]) -> None:
    cmd = sub.add_parser(name, help=help_, description=help_)
    _settings_options(cmd, argparse.SUPPRESS)
    for flags, kwargs in arguments:
        cmd.add_argument(*flags, **kwargs)  # type: ignore[arg-type]
    cmd.set_defaults(func=func)


if __name__ == "__main__":
    sys.exit(main())
