"""SSH to a server with Fabric: shipbot's own key, the pinned host key, bounded waits.

Nothing here reads ``~/.ssh`` (config, keys, agent or known_hosts): a server is reached
exactly as the store describes it.
"""

from __future__ import annotations

import contextlib
import logging
import shlex
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import invoke
import paramiko
from fabric import Config, Connection

from core.servers.errors import HostKeyChanged, NotReached, ServerError
from core.servers.hostkeys import HostKey, Pin, disabled_host_keys
from core.servers.reasons import reason
from core.servers.urls import ServerURL

log = logging.getLogger("shipbot.servers")
CONNECT_SECONDS = 10
COMMAND_SECONDS = 600  # apt-get installing Docker is the longest step


@dataclass(frozen=True)
class Login:
    """How to reach one server: its name (for messages), address, key and pinned host key."""

    name: str
    url: ServerURL
    pkey: paramiko.PKey
    recorded: HostKey | None = None

    def connect_kwargs(self) -> dict:
        return {
            "pkey": self.pkey,
            "look_for_keys": False,
            "allow_agent": False,
            "banner_timeout": CONNECT_SECONDS,
            "auth_timeout": CONNECT_SECONDS,
            "channel_timeout": CONNECT_SECONDS,
            "disabled_algorithms": disabled_host_keys(self.recorded),
        }


def unreachable(login: Login, exc: BaseException) -> NotReached:
    """SSH to ``login``'s server failed: why, in words; the address only for admins and the
    log (with the exception's own text)."""
    log.warning("server %s at %s not reached over SSH: %r", login.name, login.url, exc)
    why = reason(exc)
    return NotReached(
        f"cannot reach server {login.name} over SSH ({why}): an admin can run "
        f"`server check {login.name}`; nothing was changed",
        f"cannot reach server {login.name} at {login.url} over SSH ({why}): check the "
        "address, that sshd runs there and that the port is open to shipbot; nothing was "
        "changed",
    )


def key_refused(login: Login, exc: BaseException) -> NotReached:
    log.warning("server %s at %s refused shipbot's key: %r", login.name, login.url, exc)
    return NotReached(
        f"server {login.name} refused shipbot's key: an admin can put its public line "
        f"(`ssh-key show KEY`) in the login's ~/.ssh/authorized_keys there, then run "
        f"`server check {login.name}`",
        f"server {login.name} ({login.url}) refused shipbot's key: put its public line "
        f"(`ssh-key show KEY`) in ~{login.url.user}/.ssh/authorized_keys there",
    )


@contextlib.contextmanager
def connect(login: Login) -> Iterator[tuple[Connection, Pin]]:
    """An open Fabric connection and the policy that checked the host key (``pin.presented``
    is the key the host showed: the one to record on first use)."""
    pin = Pin(login.name, login.recorded)
    config = Config(overrides={"load_ssh_configs": False})
    conn = Connection(
        login.url.host,
        user=login.url.user,
        port=login.url.port,
        config=config,
        connect_timeout=CONNECT_SECONDS,
        connect_kwargs=login.connect_kwargs(),
    )
    conn.client.set_missing_host_key_policy(pin)
    try:
        try:
            conn.open()
        except HostKeyChanged:
            raise
        except paramiko.AuthenticationException as exc:
            raise key_refused(login, exc) from exc
        except (OSError, paramiko.SSHException, EOFError) as exc:
            raise unreachable(login, exc) from exc
        yield conn, pin
    finally:
        conn.close()


@dataclass(frozen=True)
class Ran:
    exited: int
    stdout: str
    stderr: str


def run(conn: Connection, argv: Sequence[str], timeout: int = COMMAND_SECONDS) -> Ran:
    """One command from an argv list (quoted here, so no value is read by the shell). Its
    errors name no host (callers name the server): a deploy's image spreading shows them."""
    command = shlex.join(argv)
    shown = " ".join(argv[:3])  # never the arguments: a join token is one
    try:
        result = conn.run(command, hide=True, warn=True, in_stream=False, timeout=timeout)
    except invoke.CommandTimedOut as exc:
        raise ServerError(f"`{shown}` took longer than {timeout}s over SSH") from exc
    except (OSError, paramiko.SSHException, EOFError) as exc:
        log.warning("SSH session to %s broke during %s: %r", conn.host, shown, exc)
        raise ServerError(
            f"the SSH session broke during `{shown}` ({reason(exc, handshake=False)})"
        ) from exc
    return Ran(result.exited, result.stdout, result.stderr)


def check(conn: Connection, argv: Sequence[str], what: str) -> str:
    """``run`` that must succeed; its stdout, or an error naming ``what`` and stderr's end."""
    ran = run(conn, argv)
    if ran.exited != 0:
        tail = (ran.stderr or ran.stdout).strip().splitlines()[-3:]
        raise ServerError(f"{what} failed (exit {ran.exited}): {' '.join(tail)}")
    return ran.stdout
