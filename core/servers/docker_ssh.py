# ruff: noqa: E402 (the SDK's ssh:// adapter is let load before the SDK's imports below)
"""The docker SDK over ``ssh://`` with the pinned host key and shipbot's own login key.

docker-py's SSH adapter reads ``~/.ssh/config`` and ``~/.ssh/known_hosts`` and refuses
unknown hosts (RejectPolicy), with no arguments to do otherwise. ``PinnedSSHAdapter``
overrides only how it builds its paramiko client: no files read, our key, our ``Pin``.
The API client is made with the shell-out transport (which connects lazily, so nothing
reaches the host unchecked) and then given this adapter in its place.

Every API request is a session (``docker system dial-stdio``) on the adapter's one SSH
connection, and sshd allows 10 per connection (MaxSessions). docker-py keys its pools by
the request's whole URL, so each path and query had a pool of its own, each keeping an idle
session open: nine pools and an event stream filled sshd's ten, and the next request was
refused ("no more sessions"), which read as "dockerd stopped". Here the adapter has one
pool, its sessions counted until sshd has closed them (``core.servers.ssh_sessions``), at
most ``SESSIONS``; a request waits for a free one. A lost connection is made again by the
next request; SSH failures say they are SSH's, never "dockerd stopped".
"""

from __future__ import annotations

from core.swarm import ssh_transport

ssh_transport()

import docker
import docker.constants
import docker.errors
import paramiko
import requests
import urllib3
from docker.transport import SSHHTTPAdapter
from docker.transport.sshconn import SSHConnection, SSHConnectionPool
from docker.utils import version_lt

from core.servers.errors import HostKeyChanged, ServerError
from core.servers.hostkeys import Pin
from core.servers.reasons import reason
from core.servers.ssh import CONNECT_SECONDS, Login, key_refused, log, unreachable
from core.servers.ssh_sessions import Sessions, SessionsBusy, refused
from core.swarm.docker_api import DEFAULT_TIMEOUT, MINIMUM_API, DockerSwarm
from core.swarm.docker_errors import TransportError

_MOUNT = "http+docker://ssh"
SESSIONS = 8  # sshd's default MaxSessions is 10: two spare for a close that crosses an open
SESSION_WAIT_SECONDS = 60.0


class Session(SSHConnection):
    """One HTTP connection to the engine: a session of ``sessions``, let go (not closed
    first) when urllib3 is done with it."""

    def __init__(self, sessions: Sessions, timeout: int) -> None:
        super().__init__(None, timeout, None)
        self.sessions = sessions

    def connect(self) -> None:
        self.sock = self.sessions.open("docker system dial-stdio", self.timeout)

    def close(self) -> None:
        channel, self.sock = self.sock, None
        if channel is not None:
            self.sessions.let_go(channel)
        super().close()


class BoundedSessions(SSHConnectionPool):
    """The adapter's one pool: at most ``sessions`` connections, each a session of the
    connection's ``Sessions``; a request past them waits for one (a blocking pool)."""

    def __init__(self, sessions: Sessions, timeout: int) -> None:
        super().__init__(ssh_client=None, timeout=timeout, maxsize=sessions.limit)
        self.sessions = sessions
        self.block = True

    def _new_conn(self) -> Session:
        return Session(self.sessions, self.timeout)

    def urlopen(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        kwargs.setdefault("pool_timeout", SESSION_WAIT_SECONDS)
        if "retries" in kwargs:  # requests' call (urllib3's own retry passes it by position)
            kwargs["retries"] = READ_AGAIN
        return super().urlopen(*args, **kwargs)


# A read (GET, HEAD) whose kept session ended while it waited in the pool (the engine's end
# said nothing: "Remote end closed connection without response") is asked once more on
# another session; nothing else is repeated (a create or update may have been done)
READ_AGAIN = urllib3.util.Retry(
    total=1, connect=0, read=1, redirect=0, status=0, other=0,
    allowed_methods=frozenset({"GET", "HEAD"}), raise_on_redirect=False,
)  # fmt: skip


def session_words(name: str, exc: BaseException) -> str:
    """An SSH failure as what it is: sshd's session limit named when it refused one. Its
    words name the server, never its address (the exception's own text goes to the log)."""
    if refused(exc):
        return (
            f"sshd on server {name} refused a new SSH session: its MaxSessions limit "
            "per connection was reached; shipbot keeps below 10, so another client shares "
            "this login's connection or MaxSessions is set lower there"
        )
    if isinstance(exc, (urllib3.exceptions.EmptyPoolError, SessionsBusy)):
        return (
            f"all {SESSIONS} SSH sessions to server {name} stayed busy for "
            f"{SESSION_WAIT_SECONDS:.0f}s (log streams or slow requests); try again"
        )
    return f"the SSH connection to server {name} failed ({reason(exc, handshake=False)})"


class PinnedSSHAdapter(SSHHTTPAdapter):
    def __init__(self, login: Login, timeout: int, sessions: int = SESSIONS) -> None:
        self._login = login
        self._sessions = sessions
        super().__init__(
            login.url.docker_url,
            timeout=timeout,
            pool_connections=docker.constants.DEFAULT_NUM_POOLS_SSH,
            max_pool_size=sessions,
        )

    def _create_paramiko_client(self, base_url: str) -> None:
        self.ssh_client = paramiko.SSHClient()
        self.ssh_client.set_missing_host_key_policy(Pin(self._login.name, self._login.recorded))
        self.ssh_params = {
            "hostname": self._login.url.host,
            "port": self._login.url.port,
            "username": self._login.url.user,
            "pkey": self._login.pkey,
            "look_for_keys": False,
            "allow_agent": False,
            "timeout": CONNECT_SECONDS,
            "banner_timeout": CONNECT_SECONDS,
            "auth_timeout": CONNECT_SECONDS,
            **self._login.connect_kwargs(),
        }
        self.ssh_params.pop("channel_timeout", None)

    def connected(self) -> bool:
        """Whether the SSH connection is up (not yet made, or dropped: not)."""
        transport = self.ssh_client.get_transport()
        return transport is not None and transport.is_active()

    def get_connection(self, url, proxies=None):  # type: ignore[no-untyped-def]
        """The one pool, whatever the URL (docker-py asks by the request's whole URL): every
        request goes to the same engine over the same connection. A connection that was
        lost is made again here (its pool, with the sessions it had, goes with it)."""
        with self.pools.lock:
            pool = self.pools.get(_MOUNT)
            up = self.connected()
            if pool is not None and up:
                return pool
            if not up:
                try:
                    self._connect()
                except HostKeyChanged:
                    raise
                except (OSError, paramiko.SSHException, EOFError) as exc:
                    raise ReconnectFailed(str(unreachable(self._login, exc))) from exc
            self.pools.clear()
            sessions = Sessions(self.ssh_client.get_transport(), self._sessions)
            pool = BoundedSessions(sessions, self.timeout)
            self.pools[_MOUNT] = pool
            return pool

    def send(self, request, *args, **kwargs):  # type: ignore[no-untyped-def]
        """SSH trouble mid-request is told as SSH's (the swarm client's errors name what
        was being done), not as the engine gone away nor as an internal error."""
        try:
            return super().send(request, *args, **kwargs)
        except ReconnectFailed as exc:
            raise TransportError(str(exc), request=request) from exc
        except (paramiko.SSHException, EOFError, urllib3.exceptions.EmptyPoolError) as exc:
            log.warning("SSH to server %s during a request: %r", self._login.name, exc)
            raise TransportError(session_words(self._login.name, exc), request=request) from exc
        except requests.exceptions.ConnectionError as exc:
            if self.connected():
                raise  # the engine's end of a live session: the engine's trouble
            log.warning("SSH to server %s lost during a request: %r", self._login.name, exc)
            raise TransportError(
                f"the SSH connection to server {self._login.name} was lost during the request; "
                "the next request connects again",
                request=request,
            ) from exc


class ReconnectFailed(Exception):
    """The lost SSH connection could not be made again (its words name the server)."""


class RemoteSwarm(DockerSwarm):
    """A swarm manager over SSH, whose one connection can drop (its host stopped)."""

    def lost(self) -> bool:
        return not self.api._custom_adapter.connected()  # noqa: SLF001 (``api_client`` set it)


def api_client(login: Login, version: str, timeout: int = DEFAULT_TIMEOUT) -> docker.APIClient:
    """An engine API client for ``login``'s server; connects (and checks the host key) now."""
    api = docker.APIClient(
        base_url=login.url.docker_url, version=version, timeout=timeout, use_ssh_client=True
    )
    try:
        adapter = PinnedSSHAdapter(login, timeout)
    except HostKeyChanged:
        api.close()
        raise
    except paramiko.AuthenticationException as exc:
        api.close()
        raise key_refused(login, exc) from exc
    except (OSError, paramiko.SSHException, EOFError) as exc:
        api.close()
        raise unreachable(login, exc) from exc
    api._custom_adapter.close()  # noqa: SLF001 (the lazy shell-out adapter, never used)
    api._custom_adapter = adapter  # noqa: SLF001
    api.mount(_MOUNT, adapter)
    return api


def connect(login: Login, timeout: int = DEFAULT_TIMEOUT) -> RemoteSwarm:
    """The swarm manager behind ``login``, as the deploy code's swarm client."""
    probe = api_client(login, MINIMUM_API, timeout)
    try:
        server = probe.version(api_version=False)["ApiVersion"]
    except (docker.errors.DockerException, requests.exceptions.RequestException) as exc:
        raise ServerError(
            f"server {login.name} answers SSH but not as a Docker engine ({exc}): "
            f"`server check {login.name}` says what is missing"
        ) from exc
    finally:
        probe.close()
    newest = docker.constants.DEFAULT_DOCKER_API_VERSION
    agreed = server if version_lt(server, newest) else newest
    swarm = RemoteSwarm(api_client(login, agreed, timeout))
    try:
        swarm.check_manager()
    except BaseException:
        swarm.close()
        raise
    return swarm
