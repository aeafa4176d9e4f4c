"""Share links for a named recipient: an opaque token kept only as a hash, an expiry, revocation, a
one-time access code sent by email, a lock after too many wrong codes and a receipt before download.

The recipient's pages (evidence.web_share) call `open_link` and friends; staff pages create and revoke.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from control_room.errors import ControlRoomError
from control_room.evidence.models import EvidencePackage, ShareLink
from control_room.models import User

CODE_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no 0/O or 1/I to misread
CODE_LENGTH = 8


class ShareError(ControlRoomError, ValueError):
    """A share link cannot be created or used as asked; the message says why."""


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def code_hash(secret: str, link_id: int, code: str) -> str:
    """Keyed with the app secret and the link: a leaked database row alone does not give the code."""
    normal = code.strip().upper().replace("-", "").replace(" ", "")
    return hmac.new(secret.encode(), f"{link_id}:{normal}".encode(), hashlib.sha256).hexdigest()


def new_code() -> str:
    return "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))


@dataclass(frozen=True)
class NewLink:
    link: ShareLink
    token: str  # shown once to the member of staff, never stored
    code: str  # emailed to the recipient, never stored


def create(
    db: Session,
    pkg: EvidencePackage,
    user: User,
    now: datetime,
    name: str,
    org: str,
    email: str,
    days: int,
    max_days: int,
    secret: str,
) -> NewLink:
    from control_room.evidence.disclosure import EMAIL_RE

    name, org, email = name.strip(), org.strip(), email.strip()
    if not name or not org:
        raise ShareError("the recipient's name and organisation are required")
    if len(name) > 200 or len(org) > 200:
        raise ShareError("the recipient's name or organisation is too long")
    if not EMAIL_RE.match(email):
        raise ShareError("the recipient's email is not an email address")
    if not 1 <= days <= max_days:
        raise ShareError(f"a link lasts 1 to {max_days} days")
    token = secrets.token_urlsafe(32)
    link = ShareLink(
        package_id=pkg.id,
        token_hash=token_hash(token),
        recipient_name=name,
        recipient_org=org,
        recipient_email=email,
        created_at=now,
        created_by_id=user.id,
        expires_at=now + timedelta(days=days),
    )
    db.add(link)
    db.flush()
    code = new_code()
    link.code_hash, link.code_sent_at = code_hash(secret, link.id, code), now
    return NewLink(link, token, code)


def find(db: Session, token: str) -> ShareLink | None:
    if not token or len(token) > 100:
        return None
    return db.scalar(select(ShareLink).where(ShareLink.token_hash == token_hash(token)))


def unusable(link: ShareLink, now: datetime) -> str | None:
    """Why the link cannot be used at all now, or None."""
    if link.revoked_at is not None:
        return "revoked"
    if link.locked_at is not None:
        return "locked after too many wrong codes"
    if now >= link.expires_at:
        return "expired"
    return None


def check_code(link: ShareLink, code: str, secret: str, now: datetime, attempts: int) -> bool:
    """True (and the code is spent) for the right code; a wrong one counts, and locks at `attempts`."""
    if link.code_hash is not None and hmac.compare_digest(link.code_hash, code_hash(secret, link.id, code)):
        link.code_hash = None  # one-time
        link.opened_at = link.opened_at or now
        return True
    link.failed_codes += 1
    if link.failed_codes >= attempts:
        link.locked_at = now
    return False


def reissue_code(link: ShareLink, secret: str, now: datetime) -> str:
    if link.code_sent_at is not None and now - link.code_sent_at < timedelta(minutes=1):
        raise ShareError("a code was sent less than a minute ago: check the recipient's mailbox")
    code = new_code()
    link.code_hash, link.code_sent_at = code_hash(secret, link.id, code), now
    return code


def revoke(link: ShareLink, user: User, now: datetime) -> None:
    if link.revoked_at is None:
        link.revoked_at, link.revoked_by_id = now, user.id


def code_email(link: ShareLink, pkg: EvidencePackage, code: str) -> tuple[str, str]:
    subject = f"Access code for evidence {pkg.exhibit_ref}"
    body = (
        f"Dear {link.recipient_name},\n\nA link to CCTV evidence package {pkg.exhibit_ref} is being sent "
        f"to you separately. When you open it, enter this one-time access code:\n\n    {code}\n\n"
        f"The link expires at {link.expires_at:%Y-%m-%d %H:%M} UTC. If you did not expect this, tell the "
        "sender and do not forward this message.\n"
    )
    return subject, body
