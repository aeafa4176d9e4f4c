"""Who may do what with evidence, per council: defaults below, overridden by evidence_role_grants rows.

Views call `allowed(user, permission, council_id)`; a partnership-wide admin may do everything.
"""

from __future__ import annotations

from flask import abort, g
from sqlalchemy import select
from sqlalchemy.orm import Session

from control_room.evidence.models import EvidenceRoleGrant
from control_room.models import User

# permission -> roles allowed unless a council's grant row says otherwise
DEFAULTS: dict[str, frozenset[str]] = {
    "record": frozenset({"officer", "admin"}),  # record a request from the police form
    "approve": frozenset({"admin"}),  # approve or refuse; build the package
    "deliver": frozenset({"officer", "admin"}),  # share links, push to a police store
    "revoke": frozenset({"officer", "admin"}),  # revoke a share link
    "hold": frozenset({"officer", "admin"}),  # put footage on evidential hold
    "release": frozenset({"admin"}),  # release a hold
    "register": frozenset({"officer", "admin"}),  # read the disclosure register
}
PERMISSIONS = tuple(DEFAULTS)


def roles_for(db: Session, council_id: int, permission: str) -> frozenset[str]:
    row = db.scalar(
        select(EvidenceRoleGrant).where(
            EvidenceRoleGrant.council_id == council_id, EvidenceRoleGrant.permission == permission
        )
    )
    return frozenset(row.roles) if row is not None else DEFAULTS[permission]


def allowed(db: Session, user: User | None, permission: str, council_id: int | None) -> bool:
    if user is None or not getattr(user, "active", True):
        return False
    if user.partnership_wide:
        return True
    if council_id is None or user.council_id != council_id:
        return False
    return str(user.role) in roles_for(db, council_id, permission)


def require_allowed(db: Session, permission: str, council_id: int | None) -> None:
    """403 unless the logged-in user may do `permission` for that council."""
    if not allowed(db, g.get("user"), permission, council_id):
        abort(403, description=f"your role may not '{permission}' evidence for this council")


def set_roles(db: Session, council_id: int, permission: str, roles: list[str]) -> None:
    """Configure one council's roles for a permission (an admin's choice; audited by the caller)."""
    if permission not in DEFAULTS:
        raise ValueError(f"unknown evidence permission {permission!r}")
    known = {"operator", "officer", "engineer", "admin"}
    bad = sorted(set(roles) - known)
    if bad:
        raise ValueError(f"unknown role(s): {', '.join(bad)}")
    row = db.scalar(
        select(EvidenceRoleGrant).where(
            EvidenceRoleGrant.council_id == council_id, EvidenceRoleGrant.permission == permission
        )
    )
    if row is None:
        db.add(EvidenceRoleGrant(council_id=council_id, permission=permission, roles=sorted(roles)))
    else:
        row.roles = sorted(roles)


ROLE_ARGUMENTS: list[tuple[tuple[str, ...], dict[str, object]]] = [
    (("council",), {"help": "council slug"}),
    (("permission",), {"choices": list(DEFAULTS)}),
    (("roles",), {"nargs": "*", "help": "roles allowed (none = only a partnership admin)"}),
    (("--default",), {"action": "store_true", "help": "back to the built-in default"}),
]


def cmd_evidence_roles(args: object, settings: object) -> int:
    """`cctv-control-room evidence-roles COUNCIL PERMISSION ROLE...`: configure and audit one grant."""
    from control_room import audit
    from control_room.db import make_engine, session_scope
    from control_room.models import Council

    engine = make_engine(settings.resolved_database_url(), settings.db_pool_size)  # type: ignore[attr-defined]
    with session_scope(engine) as s:
        council = s.scalar(select(Council).where(Council.slug == args.council))  # type: ignore[attr-defined]
        if council is None:
            raise ValueError(f"unknown council {args.council!r}")  # type: ignore[attr-defined]
        permission = args.permission  # type: ignore[attr-defined]
        if args.default:  # type: ignore[attr-defined]
            row = s.scalar(
                select(EvidenceRoleGrant).where(
                    EvidenceRoleGrant.council_id == council.id, EvidenceRoleGrant.permission == permission
                )
            )
            if row is not None:
                s.delete(row)
            roles = sorted(DEFAULTS[permission])
        else:
            roles = sorted(set(args.roles))  # type: ignore[attr-defined]
            set_roles(s, council.id, permission, roles)
        audit.record(
            s, None, "evidence_roles", "council", council.slug, {"permission": permission, "roles": roles}
        )
        print(
            f"{council.slug}: '{permission}' allowed to {', '.join(roles) or 'partnership admins only'}"
        )
    return 0
