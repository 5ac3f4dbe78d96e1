"""Why SSH to a server failed, in words that name no address (core/servers/reasons.py), and
the two messages of a failure: the one everyone may read, and the admins' one with the
address; the exception's own text goes to the log."""

from __future__ import annotations

import errno
import logging
import os
import socket

import paramiko
import pytest
from paramiko.ssh_exception import NoValidConnectionsError

from core.servers import keys, ssh
from core.servers.docker_ssh import session_words
from core.servers.errors import HostKeyChanged
from core.servers.reasons import reason
from core.servers.urls import parse_url

HOST = "10.0.0.5"
PKEY = keys.load(keys.generate())


def no_connection(code: int) -> NoValidConnectionsError:
    """paramiko's error when every address refused: its text names each address."""
    return NoValidConnectionsError({(HOST, 22): OSError(code, os.strerror(code))})


@pytest.mark.parametrize(
    ("exc", "words"),
    [
        (no_connection(errno.ECONNREFUSED), "connection refused"),
        (no_connection(errno.EHOSTUNREACH), "no route to host"),
        (ConnectionRefusedError(errno.ECONNREFUSED, HOST), "connection refused"),
        (TimeoutError("timed out"), "connection timed out"),
        (OSError(errno.ETIMEDOUT, HOST), "connection timed out"),
        (socket.gaierror(socket.EAI_NONAME, "Name or service not known"), "host name not found"),
        (OSError(errno.ENETUNREACH, "Network is unreachable"), "network unreachable"),
        (OSError(errno.EACCES, HOST), "permission denied"),
        (EOFError(), "connection closed during the SSH handshake"),
        (paramiko.SSHException(f"Error reading SSH banner {HOST}"), "SSH handshake failed"),
        (paramiko.AuthenticationException("Authentication failed."), "shipbot's key refused"),
        (paramiko.BadHostKeyException(HOST, PKEY, PKEY), "host key changed"),
        (HostKeyChanged("the host key of server eu-1 changed"), "host key changed"),
        (paramiko.ChannelException(1, f"prohibited on {HOST}"), "SSH session refused"),
        (ValueError(HOST), "ValueError (see shipbot's log)"),
    ],
)  # fmt: skip
def test_a_failure_is_told_by_its_kind_never_its_text(exc, words):
    assert reason(exc) == words
    assert HOST not in reason(exc) and HOST not in reason(exc, handshake=False)


def test_during_a_command_the_same_failures_are_not_called_a_handshake():
    assert reason(EOFError(), handshake=False) == "connection closed"
    assert reason(paramiko.SSHException("SSH session not active"), handshake=False) == "SSH error"
    assert session_words("eu-1", OSError(errno.ECONNRESET, HOST)) == (
        "the SSH connection to server eu-1 failed (connection reset)"
    )


def test_everyone_reads_the_server_and_why_admins_and_the_log_the_address_too(caplog):
    login = ssh.Login("eu-1", parse_url(f"ssh://deploy@{HOST}:2222"), PKEY)
    with caplog.at_level(logging.WARNING, logger="shipbot.servers"):
        away = ssh.unreachable(login, no_connection(errno.ECONNREFUSED))
    assert str(away) == (
        "cannot reach server eu-1 over SSH (connection refused): an admin can run "
        "`server check eu-1`; nothing was changed"
    )
    assert away.for_admin == (
        f"cannot reach server eu-1 at ssh://deploy@{HOST}:2222 over SSH (connection refused): "
        "check the address, that sshd runs there and that the port is open to shipbot; "
        "nothing was changed"
    )
    (logged,) = caplog.messages
    assert (
        f"ssh://deploy@{HOST}:2222" in logged
        and f"Unable to connect to port 22 on {HOST}" in logged
    )

    refused = ssh.key_refused(login, paramiko.AuthenticationException("Authentication failed."))
    assert str(refused) == (
        "server eu-1 refused shipbot's key: an admin can put its public line (`ssh-key show "
        "KEY`) in the login's ~/.ssh/authorized_keys there, then run `server check eu-1`"
    )
    assert refused.for_admin == (
        f"server eu-1 (ssh://deploy@{HOST}:2222) refused shipbot's key: put its public line "
        "(`ssh-key show KEY`) in ~deploy/.ssh/authorized_keys there"
    )
