"""Email for the evidence area: the one-time access code of a share link, sent apart from the link.

SMTP with STARTTLS and certificate verification when configured; the code is never logged.
"""

from __future__ import annotations

import smtplib
import ssl
from email.message import EmailMessage
from typing import Any

from control_room.errors import ControlRoomError


class MailError(ControlRoomError):
    """The SMTP server could not be reached or refused the message."""


def send(settings: Any, to: str, subject: str, body: str) -> None:
    if not settings.smtp_host:
        raise MailError("no SMTP server configured (CONTROL_ROOM_SMTP_HOST)")
    msg = EmailMessage()
    msg["From"], msg["To"], msg["Subject"] = settings.smtp_from, to, subject
    msg.set_content(body)
    try:
        with smtplib.SMTP(settings.smtp_host, settings.smtp_port, timeout=15) as smtp:
            if settings.smtp_starttls:
                smtp.starttls(context=ssl.create_default_context())
            if settings.smtp_user and settings.smtp_password is not None:
                smtp.login(settings.smtp_user, settings.smtp_password.get_secret_value())
            smtp.send_message(msg)
    except (OSError, smtplib.SMTPException) as err:
        raise MailError(f"could not send email via {settings.smtp_host}: {type(err).__name__}") from None
