"""SSH to a server with Fabric: shipbot's own key, the pinned host key, bounded waits.

Nothing here reads ``~/.ssh`` (config, keys, agent or known_hosts): a server is reached
exactly as the store describes it.
"""

from __future__ import annotations

import contextlib
import shlex
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import invoke
import paramiko
from fabric import Config, Connection

from core.servers.errors import HostKeyChanged, ServerError
from core.servers.hostkeys import HostKey, Pin, disabled_host_keys
from core.servers.urls import ServerURL

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


def unreachable(login: Login, exc: BaseException) -> ServerError:
    return ServerError(
        f"cannot reach server {login.name} at {login.url} over SSH ({_why(exc)}): check the "
        "address, that sshd runs there and that the port is open to shipbot; nothing was changed"
    )


def _why(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    return text if len(text) < 200 else text[:200] + "…"


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
            raise ServerError(
                f"server {login.name} ({login.url}) refused shipbot's key: put its public line "
                f"(`ssh-key show KEY`) in ~{login.url.user}/.ssh/authorized_keys there"
            ) from exc
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
    """One command from an argv list (quoted here, so no value is read by the shell)."""
    command = shlex.join(argv)
    shown = " ".join(argv[:3])  # never the arguments: a join token is one
    try:
        result = conn.run(command, hide=True, warn=True, in_stream=False, timeout=timeout)
    except invoke.CommandTimedOut as exc:
        raise ServerError(f"`{shown}` on {conn.host} took longer than {timeout}s") from exc
    except (OSError, paramiko.SSHException, EOFError) as exc:
        raise ServerError(f"the SSH session to {conn.host} broke during `{shown}`: {exc}") from exc
    return Ran(result.exited, result.stdout, result.stderr)


def check(conn: Connection, argv: Sequence[str], what: str) -> str:
    """``run`` that must succeed; its stdout, or an error naming ``what`` and stderr's end."""
    ran = run(conn, argv)
    if ran.exited != 0:
        tail = (ran.stderr or ran.stdout).strip().splitlines()[-3:]
        raise ServerError(f"{what} failed on {conn.host} (exit {ran.exited}): {' '.join(tail)}")
    return ran.stdout
