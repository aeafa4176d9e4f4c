"""Every error the control room raises on purpose, under one root: ControlRoomError.

A command prints one line and exits 2 for any of them; a page or the unit API answers with the
status the subclass names (400, 409, ...). Anything else escaping is a bug.
"""

from __future__ import annotations


class ControlRoomError(Exception):
    """Root: a request or a command that cannot be carried out as asked; the message says why."""

    status = 400


class SettingsError(ControlRoomError):
    """The control room settings are invalid: fix the environment or file, do not retry."""


class BadName(ControlRoomError, ValueError):
    """A name or identifier that may not be stored; the message says which and why.

    Also a ValueError, so pydantic validators that call names.check report it as a field error.
    """


class FormError(ControlRoomError):
    """A form field that cannot be accepted; the message names it."""


class ProvisionError(ControlRoomError):
    """A provisioning request that cannot be carried out (unknown council, duplicate id...)."""


class InstructionError(ControlRoomError):
    """An instruction that would not make sense to the unit (bad range, unknown type)."""


class Refusal(ControlRoomError):
    """A unit API request body that will be refused (after authentication, so 401/403 come first)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status, self.message = status, message


class EventConflict(ControlRoomError):
    """An event id that is already stored with other content, or belongs to another unit (409)."""

    status = 409

    def __init__(self, message: str, differences: list[str] | None = None) -> None:
        super().__init__(message)
        self.differences = differences or []


class DeploymentError(ControlRoomError):
    """A deployment that would make the unit's history impossible (dates, overlap, revoked unit)."""

    def __init__(self, message: str, status: int = 409) -> None:
        super().__init__(message)
        self.status = status


class LoginThrottled(ControlRoomError):
    """Too many failed logins from this address or for this name: wait `retry_after_s`."""

    status = 429

    def __init__(self, message: str, retry_after_s: int) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class HashingBusy(ControlRoomError):
    """Every password-hashing slot is taken (a login flood): try again in a moment."""

    status = 503


class UserError(ControlRoomError):
    """A user change that cannot be made (unknown name, out of the admin's council, bad password)."""
