"""The servers room's errors: each says what went wrong with which server and what to do."""

from __future__ import annotations

from core.errors import CoreError


class ServerError(CoreError):
    """A server cannot be added, reached, bootstrapped or driven."""


class HostKeyChanged(ServerError):
    """The host presented another key than the one recorded on first use."""


class ServerUnreachable(ServerError):
    """The server a command acts on is unknown or does not answer; the message names it."""
