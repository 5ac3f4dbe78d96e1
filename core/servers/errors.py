"""The servers room's errors: each says what went wrong with which server and what to do."""

from __future__ import annotations

from core.errors import CoreError


class ServerError(CoreError):
    """A server cannot be added, reached, bootstrapped or driven."""


class HostKeyChanged(ServerError):
    """The host presented another key than the one recorded on first use."""


class ServerUnreachable(ServerError):
    """The server a command acts on is unknown or does not answer; the message names it."""


class NotReached(ServerError):
    """SSH to a server failed (connect, handshake, key). Its message names the server and
    why, never the login or the address: anyone who may see an app on that server reads it.
    ``for_admin`` says the same with the address, for the admin-only commands that show it
    anyway (`server add`, `server check`, `server trust`)."""

    def __init__(self, message: str, for_admin: str) -> None:
        super().__init__(message)
        self.for_admin = for_admin
