"""The docker SDK over ``ssh://`` with the pinned host key and shipbot's own login key.

docker-py's SSH adapter reads ``~/.ssh/config`` and ``~/.ssh/known_hosts`` and refuses
unknown hosts (RejectPolicy), with no arguments to do otherwise. ``PinnedSSHAdapter``
overrides only how it builds its paramiko client: no files read, our key, our ``Pin``.
The API client is made with the shell-out transport (which connects lazily, so nothing
reaches the host unchecked) and then given this adapter in its place.
"""

from __future__ import annotations

import docker
import docker.constants
import docker.errors
import paramiko
import requests
from docker.transport import SSHHTTPAdapter
from docker.utils import version_lt

from core.servers.errors import HostKeyChanged, ServerError
from core.servers.hostkeys import Pin
from core.servers.ssh import CONNECT_SECONDS, Login, unreachable
from core.swarm.docker_api import DEFAULT_TIMEOUT, MINIMUM_API, DockerSwarm

_MOUNT = "http+docker://ssh"


class PinnedSSHAdapter(SSHHTTPAdapter):
    def __init__(self, login: Login, timeout: int) -> None:
        self._login = login
        # sshd allows 10 sessions per connection (MaxSessions) and each pool holds one:
        # docker-py's own limit for SSH, which its API client passes and we must too
        super().__init__(
            login.url.docker_url,
            timeout=timeout,
            pool_connections=docker.constants.DEFAULT_NUM_POOLS_SSH,
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

    def send(self, request, *args, **kwargs):  # type: ignore[no-untyped-def]
        """SSH trouble mid-request reads as the engine gone away (the swarm client's errors
        name what was being done), not as an internal error."""
        try:
            return super().send(request, *args, **kwargs)
        except (paramiko.SSHException, EOFError) as exc:
            raise requests.exceptions.ConnectionError(
                f"the SSH connection to {self._login.name} failed: {exc}", request=request
            ) from exc


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


def connect(login: Login, timeout: int = DEFAULT_TIMEOUT) -> DockerSwarm:
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
    swarm = DockerSwarm(api_client(login, agreed, timeout))
    try:
        swarm.check_manager()
    except BaseException:
        swarm.close()
        raise
    return swarm
