# ruff: noqa: E402 (the SDK's ssh:// adapter is let load before the SDK's imports below)
"""The docker SDK over ``ssh://`` with the pinned host key and shipbot's own login key.

docker-py's SSH adapter reads ``~/.ssh/config`` and ``~/.ssh/known_hosts`` and refuses
unknown hosts (RejectPolicy), with no arguments to do otherwise. ``PinnedSSHAdapter``
overrides only how it builds its paramiko client: no files read, our key, our ``Pin``.
The API client is made with the shell-out transport (which connects lazily, so nothing
reaches the host unchecked) and then given this adapter in its place.

Every API request is a session (``docker system dial-stdio``) on the adapter's one SSH
connection, and sshd allows 10 per connection (MaxSessions). docker-py opens as many as
there are requests in flight, so a busy ``serve`` (event streams, checks, logs, a deploy)
ran out, and the refusal read as "dockerd stopped". ``SESSIONS`` bounds them: a request
waits for a free session, up to ``SESSION_WAIT_SECONDS``; SSH failures say they are SSH's.
"""

from __future__ import annotations

import time

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
from core.servers.ssh import CONNECT_SECONDS, Login, unreachable
from core.swarm.docker_api import DEFAULT_TIMEOUT, MINIMUM_API, DockerSwarm
from core.swarm.docker_errors import TransportError

_MOUNT = "http+docker://ssh"
SESSIONS = 5  # half sshd's default MaxSessions (10): closed sessions linger in its count
SESSION_WAIT_SECONDS = 60.0
SESSION_RETRY_SECONDS = 10.0  # sshd counts a closed session until its dial-stdio has exited
SESSION_RETRY_GAP = 0.25


class PatientSession(SSHConnection):
    """A session that, when sshd refuses it, asks again for ``SESSION_RETRY_SECONDS``:
    sessions shipbot closed linger in sshd's count until their ``docker system
    dial-stdio`` exits (seconds on a loaded host), so a refusal under the bound is
    transient. Past that time the refusal stands (and is named: ``session_words``); other
    SSH failures are not retried."""

    def connect(self) -> None:
        deadline = time.monotonic() + SESSION_RETRY_SECONDS
        while True:
            try:
                return super().connect()
            except paramiko.SSHException as exc:
                if not refused(exc) or time.monotonic() >= deadline:
                    raise
                time.sleep(SESSION_RETRY_GAP)


class BoundedSessions(SSHConnectionPool):
    """At most ``SESSIONS`` sessions open at once on the one SSH connection; a request
    past them waits for one to be given back (a blocking urllib3 pool)."""

    def __init__(self, ssh_client: paramiko.SSHClient, timeout: int, sessions: int) -> None:
        super().__init__(ssh_client=ssh_client, timeout=timeout, maxsize=sessions)
        self.block = True

    def _new_conn(self) -> SSHConnection:
        return PatientSession(self.ssh_transport, self.timeout, self.ssh_host)

    def urlopen(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        kwargs.setdefault("pool_timeout", SESSION_WAIT_SECONDS)
        return super().urlopen(*args, **kwargs)


def refused(exc: BaseException) -> bool:
    """sshd refused to open a session. paramiko says so with a ChannelException, or, when
    threads open sessions at once, one of them takes the others' exception and they get
    a bare "Unable to open channel." instead."""
    return isinstance(exc, paramiko.ChannelException) or str(exc) == "Unable to open channel."


def session_words(name: str, exc: BaseException) -> str:
    """An SSH failure as what it is: sshd's session limit named when it refused one."""
    if refused(exc):
        return (
            f"sshd on server {name} refused a new SSH session ({exc}): its MaxSessions limit "
            "per connection was reached; shipbot keeps below 10, so another client shares "
            "this login's connection or MaxSessions is set lower there"
        )
    if isinstance(exc, urllib3.exceptions.EmptyPoolError):
        return (
            f"all {SESSIONS} SSH sessions to server {name} stayed busy for "
            f"{SESSION_WAIT_SECONDS:.0f}s (log streams or slow requests); try again"
        )
    return f"the SSH connection to server {name} failed: {exc or type(exc).__name__}"


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

    def get_connection(self, url, proxies=None):  # type: ignore[no-untyped-def]
        """One bounded pool: every request goes to the same engine over the same connection."""
        with self.pools.lock:
            pool = self.pools.get(url)
            if pool is None:
                if self.ssh_client.get_transport() is None:
                    self._connect()
                pool = BoundedSessions(self.ssh_client, self.timeout, self._sessions)
                self.pools[url] = pool
            return pool

    def send(self, request, *args, **kwargs):  # type: ignore[no-untyped-def]
        """SSH trouble mid-request is told as SSH's (the swarm client's errors name what
        was being done), not as the engine gone away nor as an internal error."""
        try:
            return super().send(request, *args, **kwargs)
        except (paramiko.SSHException, EOFError, urllib3.exceptions.EmptyPoolError) as exc:
            raise TransportError(session_words(self._login.name, exc), request=request) from exc


class RemoteSwarm(DockerSwarm):
    """A swarm manager over SSH, whose one connection can drop (its host stopped)."""

    def lost(self) -> bool:
        adapter = self.api._custom_adapter  # noqa: SLF001 (set by ``api_client``)
        transport = adapter.ssh_client.get_transport()
        return transport is None or not transport.is_active()


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
        raise ServerError(f"server {login.name} refused shipbot's key ({exc})") from exc
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
