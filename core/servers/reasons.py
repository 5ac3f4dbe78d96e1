"""Pure: why SSH to a server failed, in a few words that name no address.

A server's login and address are for admins (`server list`, `server check`), but the
reason a server does not answer reaches everyone who may see an app on it (status, alerts,
deploys). The exception's own text often names the host ("Unable to connect to port 22
on 10.0.0.5"), so it is never pasted: the reason is told from the exception's type and
errno alone, and the whole text goes to the log.
"""

from __future__ import annotations

import errno
import os
import socket

import paramiko
from paramiko.ssh_exception import NoValidConnectionsError

from core.servers.errors import HostKeyChanged

_ERRNO = {
    errno.ECONNREFUSED: "connection refused",
    errno.EHOSTUNREACH: "no route to host",
    errno.ENETUNREACH: "network unreachable",
    errno.ETIMEDOUT: "connection timed out",
    errno.ECONNRESET: "connection reset",
    errno.ECONNABORTED: "connection aborted",
    errno.EPIPE: "connection broken",
}


def reason(exc: BaseException, handshake: bool = True) -> str:
    """``exc`` in words (``handshake``: it came while connecting, not during a command)."""
    if isinstance(exc, (HostKeyChanged, paramiko.BadHostKeyException)):
        return "host key changed"
    if isinstance(exc, paramiko.AuthenticationException):
        return "shipbot's key refused"
    if isinstance(exc, NoValidConnectionsError):  # one error per address tried, all alike
        tried = list(exc.errors.values())
        return reason(tried[0], handshake) if tried else "connection refused"
    if isinstance(exc, socket.gaierror):
        return "host name not found"
    if isinstance(exc, TimeoutError):
        return "connection timed out"
    if isinstance(exc, OSError) and exc.errno is not None:
        return _ERRNO.get(exc.errno) or os.strerror(exc.errno).lower()
    if isinstance(exc, EOFError):
        return "connection closed during the SSH handshake" if handshake else "connection closed"
    if isinstance(exc, paramiko.ChannelException):
        return "SSH session refused"
    if isinstance(exc, paramiko.SSHException):
        return "SSH handshake failed" if handshake else "SSH error"
    return f"{type(exc).__name__} (see shipbot's log)"
