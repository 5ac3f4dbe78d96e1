"""The swarm client protocol: what the engine asks of one Swarm manager.

``docker_api.DockerSwarm`` speaks it to a real engine through the docker SDK;
``testing.FakeSwarm`` keeps a swarm in memory for the tests' fast tier, as httpx's mock
transport does for HTTP (tests/contract/ holds it to the real engine's story). Every method
is blocking; the engine calls them through ``asyncio.to_thread``.
"""

from __future__ import annotations

import sys
import warnings
from collections.abc import Iterable, Iterator, Sequence
from typing import Any, Protocol

from core.errors import DeployError

# The docker SDK imports its ssh:// adapter, and with it paramiko, invoke, PyNaCl and
# cryptography (~19 MB resident), whenever it loads, though the local engine is a unix
# socket. Until a remote server asks for it (``ssh_transport``), that import fails and the
# SDK goes on without it, as it does where paramiko is not installed.
_SSH_ADAPTER = "docker.transport.sshconn"
if "docker" not in sys.modules:
    sys.modules.setdefault(_SSH_ADAPTER, None)  # type: ignore[assignment] (import fails)
# requests, under the SDK, loads a character-set detector (charset_normalizer, ~3 MB
# resident) to guess the encoding of a text reply that names none. The engine answers JSON,
# which requests decodes by JSON's own rules without it; without a detector, requests reads
# such text as UTF-8 (what the engine writes) and warns once at import, which is expected.
_DETECTORS = ("charset_normalizer", "chardet")
if "requests" not in sys.modules:
    for _name in _DETECTORS:
        sys.modules.setdefault(_name, None)  # type: ignore[arg-type] (import fails)
    warnings.filterwarnings("ignore", "Unable to find acceptable character detection")


def ssh_transport() -> None:
    """Give the docker SDK its ssh:// adapter, loaded now if it was held back."""
    if sys.modules.get(_SSH_ADAPTER, ...) is None:
        del sys.modules[_SSH_ADAPTER]
    import docker.api.client
    import docker.transport
    from docker.transport.sshconn import SSHHTTPAdapter

    # what the SDK's own modules would hold had the adapter loaded with them
    docker.transport.SSHHTTPAdapter = SSHHTTPAdapter  # type: ignore[attr-defined]
    docker.api.client.SSHHTTPAdapter = SSHHTTPAdapter  # type: ignore[attr-defined]


class VolumeInUse(DeployError):
    """A volume cannot be removed yet: a container (perhaps one stopping) still holds it."""


class NetworkInUse(DeployError):
    """A network cannot be removed yet: a task (perhaps one stopping) is still on it."""


class ExecStream(Protocol):
    """A command running in a container: its stdout as it comes, then its end.

    ``stdout`` may be iterated once; after it ends, ``exit_code`` is the command's exit
    status (None when the engine never saw it end) and ``stderr`` its last lines.
    """

    def stdout(self) -> Iterator[bytes]: ...
    def exit_code(self) -> int | None: ...
    def stderr(self) -> str: ...
    def close(self) -> None: ...


class EventStream(Protocol):
    """The engine's events as they happen, decoded; ``close`` ends the stream from any
    thread (iteration then stops or raises ``EngineUnavailable``)."""

    def __iter__(self) -> Iterator[dict[str, Any]]: ...
    def close(self) -> None: ...


class SwarmClient(Protocol):
    # overlay networks (attachable, so jobs' tasks join them too); ``labels`` on creation
    def ensure_network(self, name: str = ..., labels: dict[str, str] | None = None) -> None: ...
    def remove_network(self, name: str) -> None: ...
    def network_names(self) -> dict[str, str]: ...  # id → name: Swarm specs keep ids
    def inspect_network(self, name: str) -> dict[str, Any] | None: ...  # None: not there

    # services
    def inspect_service(self, name: str) -> dict[str, Any] | None: ...
    def services(self, app: str | None = None) -> list[dict[str, Any]]: ...
    # every service carrying ``label`` (any value): helpers and jobs, which have no app label
    def services_labelled(self, label: str) -> list[dict[str, Any]]: ...
    # ``registry_auth``: one registry's credentials, given to Swarm with this spec only
    def create_service(
        self, spec: dict[str, Any], registry_auth: dict[str, str] | None = None
    ) -> None: ...
    def update_service(
        self, spec: dict[str, Any], registry_auth: dict[str, str] | None = None
    ) -> None: ...
    def remove_service(self, name: str) -> None: ...
    def tasks(self, service: str) -> list[dict[str, Any]]: ...
    def service_logs(self, service: str, tail: int) -> list[tuple[str, str, str]]: ...

    # configs and secrets, which a service spec names by name and id
    def object_id(self, kind: str, name: str) -> str | None: ...

    # containers (only those on this manager's node)
    def inspect_container(self, container_id: str) -> dict[str, Any] | None: ...
    def container_logs(self, container_id: str, tail: int) -> list[str]: ...
    def exec_stream(
        self,
        container_id: str,
        argv: Sequence[str],
        env: dict[str, str] | None = None,
        user: str | None = None,
        stdin: Iterable[bytes] | None = None,
    ) -> ExecStream: ...

    # named volumes (on this manager's node)
    def inspect_volume(self, name: str) -> dict[str, Any] | None: ...
    def remove_volume(self, name: str) -> None: ...
    def volumes_labelled(self, label: str) -> list[dict[str, Any]]: ...

    # images
    def build(
        self,
        context: str,
        dockerfile: str,
        tag: str,
        buildargs: dict[str, str],
        labels: dict[str, str],
        target: str | None = None,
        # limits: each step's container's memory (bytes), and the whole build's seconds,
        # past which the build stops with ``BuildTimedOut``
        memory: int | None = None,
        timeout: float | None = None,
    ) -> Iterator[dict[str, Any]]: ...
    # ``auth``: credentials for this pull; ``{}`` pulls anonymously (never the host's login)
    def pull(self, image: str, auth: dict[str, str]) -> None: ...
    def image_id(self, ref: str) -> str | None: ...
    def tag(self, image: str, ref: str) -> None: ...
    def remove_image(self, ref: str) -> None: ...

    def close(self) -> None: ...

    # every app's live tasks in one call: status over many services groups them in memory
    def live_tasks(self, app: str | None = None) -> list[dict[str, Any]]: ...

    # registry images
    def registry_digest(self, image: str, auth: dict[str, str]) -> str:
        """The digest the registry serves for ``image`` (asked with ``auth``; ``{}``: none)."""
        ...

    def check_login(self, auth: dict[str, str]) -> None:
        """Raises ``DeployError`` unless the registry ``auth`` names accepts it."""
        ...

    # the watch (core/watch/alerts.py): nodes, events, what each node uses
    def nodes(self) -> list[dict[str, Any]]: ...
    def events(self, since: int | None) -> EventStream: ...
    def node_usage(self, image: str) -> dict[str, dict[str, float]]: ...

    # a removed job's stopped containers stay (moby/moby#42789): removed by their id
    def remove_container(self, container_id: str) -> None: ...

    # an image built on a build server carried to the server that runs it
    def save_image(self, ref: str) -> Iterator[bytes]: ...
    def load_image(self, chunks: Iterator[bytes]) -> None: ...


def split_tag(image: str) -> tuple[str, str | None]:
    """``registry:5000/team/api:v2`` → (``registry:5000/team/api``, ``v2``); no tag → None."""
    if "@" in image:
        return image, None
    from docker.utils import parse_repository_tag  # the SDK loads when first needed

    return parse_repository_tag(image)


def running_tasks(tasks: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Tasks Swarm wants running that are running (healthy, when the image checks health)."""
    return [
        t for t in tasks if t["DesiredState"] == "running" and t["Status"]["State"] == "running"
    ]


def comparable_image(image: str) -> str:
    """What names one release in a task's image: the tag Swarm pinned a digest to
    (``shipbot/api:3@sha256:…`` → ``shipbot/api:3``), or, for a registry image deployed by
    digest alone, the whole reference (two releases of one repository differ only there)."""
    name, at, _ = image.partition("@")
    return name if not at or split_tag(name)[1] else image
