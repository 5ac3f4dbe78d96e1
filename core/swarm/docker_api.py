"""The swarm client for a real Docker engine in swarm mode, through the docker SDK.

Every method is blocking (the docker SDK is); the engine calls them through
``asyncio.to_thread``. Errors from the SDK become ``EngineUnavailable`` or ``DeployError``.
"""

from __future__ import annotations

import contextlib
import socket
import time
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import docker
import docker.auth
import docker.constants
import docker.errors
import requests
import urllib3
from docker.utils import version_lt

from core.errors import BuildTimedOut, DeployError, EngineUnavailable
from core.names import LABEL_APP
from core.swarm import VolumeInUse, registry_api, split_tag
from core.swarm.docker_errors import engine_errors
from core.swarm.docker_exec import DockerExec
from core.swarm.docker_host import SOCKET, ssh_refusal
from core.swarm.docker_networks import DockerNetworks
from core.swarm.watch_api import DockerEvents, node_usage

DEFAULT_TIMEOUT = 60
MINIMUM_API = "1.41"  # Docker Engine 20.10, Debian bookworm's docker.io
SERVICE_KEYS = (
    "Name",
    "Labels",
    "TaskTemplate",
    "Mode",
    "UpdateConfig",
    "RollbackConfig",
    "EndpointSpec",
)


class DockerSwarm(DockerNetworks):
    """One swarm manager's engine API (its networks: core/swarm/docker_networks.py)."""

    def __init__(self, api: docker.APIClient) -> None:
        self.api = api

    @classmethod
    def connect(cls, base_url: str | None = None, timeout: int = DEFAULT_TIMEOUT) -> DockerSwarm:
        """The engine at ``base_url``, else as the docker CLI finds it (``DOCKER_HOST``)."""
        options = docker.utils.kwargs_from_env()
        if base_url:
            options["base_url"] = base_url
        url = options.get("base_url") or SOCKET
        # Ask the engine its API version with a client we close either way (version="auto"
        # would ask inside the constructor, leaving nothing to close when it fails).
        unreachable = (
            f"cannot reach the Docker engine at {url}: is dockerd running? "
            "(`./dev setup` starts one; or `systemctl start docker`)"
        )
        refused = ssh_refusal(url)  # never the SDK's own SSH, which reads ~/.ssh
        if refused is not None:
            raise EngineUnavailable(refused)
        if url.startswith("unix://"):
            # docker-py leaks the socket of a failed unix connect; try it ourselves first
            try:
                with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
                    sock.settimeout(timeout)
                    sock.connect(url.removeprefix("unix://"))
            except OSError as exc:
                raise EngineUnavailable(unreachable) from exc
        try:
            probe = docker.APIClient(**options, version=MINIMUM_API, timeout=timeout)
        except docker.errors.DockerException as exc:  # an address the SDK cannot use
            raise EngineUnavailable(f"{unreachable} ({exc})") from exc
        try:
            server = probe.version(api_version=False)["ApiVersion"]
        except (docker.errors.DockerException, requests.exceptions.RequestException) as exc:
            raise EngineUnavailable(unreachable) from exc
        finally:
            probe.close()
        newest = docker.constants.DEFAULT_DOCKER_API_VERSION
        agreed = server if version_lt(server, newest) else newest
        swarm = cls(docker.APIClient(**options, version=agreed, timeout=timeout))
        swarm.check_manager()
        return swarm

    def check_manager(self) -> None:
        with engine_errors("reading the engine's swarm state"):
            info = self.api.info()
        state = info.get("Swarm", {})
        if state.get("LocalNodeState") != "active" or not state.get("ControlAvailable"):
            raise EngineUnavailable(
                "this Docker engine is not a swarm manager: run "
                "`docker swarm init --advertise-addr 127.0.0.1` (or join it to your swarm)"
            )

    # services
    def inspect_service(self, name: str) -> dict[str, Any] | None:
        with engine_errors(f"inspecting service {name}"):
            try:
                return self.api.inspect_service(name)
            except docker.errors.NotFound:
                return None

    def services(self, app: str | None = None) -> list[dict[str, Any]]:
        label = f"{LABEL_APP}={app}" if app else LABEL_APP
        with engine_errors("listing services"):
            return self.api.services(filters={"label": label})

    def services_labelled(self, label: str) -> list[dict[str, Any]]:
        with engine_errors("listing services"):
            return self.api.services(filters={"label": label})

    def create_service(
        self, spec: dict[str, Any], registry_auth: dict[str, str] | None = None
    ) -> None:
        if registry_auth is not None:
            with engine_errors(f"creating service {spec['Name']}"):
                self._post_service("/services/create", {}, spec, registry_auth)
            return
        with engine_errors(f"creating service {spec['Name']}"):
            self.api.create_service(
                task_template=spec["TaskTemplate"],
                name=spec["Name"],
                labels=spec["Labels"],
                mode=spec["Mode"],
                update_config=spec["UpdateConfig"],
                rollback_config=spec["RollbackConfig"],
                endpoint_spec=spec["EndpointSpec"],
            )

    def update_service(
        self, spec: dict[str, Any], registry_auth: dict[str, str] | None = None
    ) -> None:
        name = spec["Name"]
        with engine_errors(f"updating service {name}"):
            current = self.api.inspect_service(name)
            if registry_auth is not None:
                path, version = f"/services/{current['ID']}/update", current["Version"]["Index"]
                self._post_service(path, {"version": version}, spec, registry_auth)
                return
            self.api.update_service(
                name,
                current["Version"]["Index"],
                task_template=spec["TaskTemplate"],
                name=name,
                labels=spec["Labels"],
                mode=spec["Mode"],
                update_config=spec["UpdateConfig"],
                rollback_config=spec["RollbackConfig"],
                endpoint_spec=spec["EndpointSpec"],
            )

    def remove_service(self, name: str) -> None:
        with engine_errors(f"removing service {name}"), contextlib.suppress(docker.errors.NotFound):
            self.api.remove_service(name)

    def tasks(self, service: str) -> list[dict[str, Any]]:
        with engine_errors(f"listing tasks of {service}"):
            return self.api.tasks(filters={"service": service})

    def service_logs(self, service: str, tail: int) -> list[tuple[str, str, str]]:
        """The last ``tail`` lines of every task: (timestamp, task id, line), unsorted."""
        with engine_errors(f"reading logs of {service}"):
            chunks = self.api.service_logs(
                service,
                stdout=True,
                stderr=True,
                tail=tail,
                timestamps=True,
                details=True,
                follow=False,
            )
            text = b"".join(chunks).decode("utf-8", errors="replace")
        return [entry for line in text.splitlines() if (entry := _log_entry(line))]

    def object_id(self, kind: str, name: str) -> str | None:
        """The id of the Swarm ``config`` or ``secret`` named ``name``; None if none."""
        with engine_errors(f"looking up the {kind} {name}"):
            found = getattr(self.api, f"{kind}s")(filters={"name": name})
            exact = [item["ID"] for item in found if item["Spec"]["Name"] == name]
            return exact[0] if exact else None

    # containers (only those on this engine's node)
    def inspect_container(self, container_id: str) -> dict[str, Any] | None:
        with engine_errors(f"inspecting container {container_id[:12]}"):
            try:
                return self.api.inspect_container(container_id)
            except docker.errors.NotFound:
                return None

    def container_logs(self, container_id: str, tail: int) -> list[str]:
        with engine_errors(f"reading logs of container {container_id[:12]}"):
            try:
                raw = self.api.logs(container_id, stdout=True, stderr=True, tail=tail)
            except docker.errors.NotFound:
                return []
        return raw.decode("utf-8", errors="replace").splitlines()

    # named volumes
    def inspect_volume(self, name: str) -> dict[str, Any] | None:
        with engine_errors(f"inspecting volume {name}"):
            try:
                return self.api.inspect_volume(name)
            except docker.errors.NotFound:
                return None

    def remove_volume(self, name: str) -> None:
        """Gone afterwards (absent is fine); ``VolumeInUse`` while a container holds it."""
        try:
            with (
                engine_errors(f"removing volume {name}"),
                contextlib.suppress(docker.errors.NotFound),
            ):
                self.api.remove_volume(name)
        except DeployError as exc:
            if isinstance(exc.__cause__, docker.errors.APIError) and (
                exc.__cause__.status_code == 409
            ):
                raise VolumeInUse(str(exc)) from exc.__cause__
            raise

    def exec_stream(
        self,
        container_id: str,
        argv: Sequence[str],
        env: dict[str, str] | None = None,
        user: str | None = None,
        stdin: Iterable[bytes] | None = None,
    ) -> DockerExec:
        with engine_errors(f"running {argv[0]} in container {container_id[:12]}"):
            return DockerExec(self.api, container_id, argv, env, user, stdin)

    # images
    def build(
        self,
        context: str,
        dockerfile: str,
        tag: str,
        buildargs: dict[str, str],
        labels: dict[str, str],
        target: str | None = None,
        memory: int | None = None,
        timeout: float | None = None,
    ) -> Iterator[dict[str, Any]]:
        """The engine's build stream, one decoded JSON message at a time.

        ``timeout`` bounds the whole build: checked after each message, and as the read
        timeout of a step that prints nothing; the stream is closed then, and the engine
        cancels a build whose client went away. ``memory`` caps each step's container
        (no swap beyond it).
        """
        limits = {"memory": memory, "memswap": memory} if memory else None
        deadline = None if timeout is None else time.monotonic() + timeout
        with engine_errors(f"building {tag}"):
            stream = self.api.build(
                path=context,
                target=target,
                dockerfile=dockerfile,
                tag=tag,
                buildargs=buildargs,
                labels=labels,
                decode=True,
                rm=True,
                forcerm=True,
                pull=False,
                container_limits=limits,
                timeout=timeout,
            )
            try:
                for message in stream:
                    yield message
                    if deadline is not None and time.monotonic() > deadline:
                        raise BuildTimedOut(f"building {tag}: over {timeout:g}s")
            except (requests.exceptions.RequestException, urllib3.exceptions.HTTPError) as exc:
                if deadline is not None and time.monotonic() >= deadline:
                    raise BuildTimedOut(f"building {tag}: over {timeout:g}s") from exc
                raise
            finally:
                stream.close()

    def pull(self, image: str, auth: dict[str, str]) -> None:
        with engine_errors(f"pulling {image}"):
            registry_api.pull(self.api, image, auth)

    def image_id(self, ref: str) -> str | None:
        with engine_errors(f"inspecting image {ref}"):
            try:
                return self.api.inspect_image(ref)["Id"]
            except docker.errors.ImageNotFound:
                return None

    def tag(self, image: str, ref: str) -> None:
        repository, tag = split_tag(ref)
        with engine_errors(f"tagging {image} as {ref}"):
            self.api.tag(image, repository, tag)

    def remove_image(self, ref: str) -> None:
        with (
            engine_errors(f"removing image {ref}"),
            contextlib.suppress(docker.errors.NotFound, docker.errors.APIError),
        ):
            self.api.remove_image(ref, noprune=False)

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.api.close()

    def live_tasks(self, app: str | None = None) -> list[dict[str, Any]]:
        """Every task Swarm wants running, of every service labelled as ``app``'s (any
        app's when None): one call for the whole swarm (the task filter ``label`` matches
        the service's labels)."""
        label = f"{LABEL_APP}={app}" if app else LABEL_APP
        with engine_errors("listing tasks"):
            return self.api.tasks(filters={"label": label, "desired-state": "running"})

    # registry images
    def registry_digest(self, image: str, auth: dict[str, str]) -> str:
        with engine_errors(f"asking the registry for {image}"):
            return registry_api.registry_digest(self.api, image, auth)

    def check_login(self, auth: dict[str, str]) -> None:
        with engine_errors(f"logging in to {auth['serveraddress']}"):
            registry_api.check_login(self.api, auth)

    def remove_container(self, container_id: str) -> None:
        """Gone afterwards, stopped first if it runs (absent is fine)."""
        with (
            engine_errors(f"removing container {container_id[:12]}"),
            contextlib.suppress(docker.errors.NotFound),
        ):
            self.api.remove_container(container_id, force=True)

    def save_image(self, ref: str) -> Iterator[bytes]:
        """``docker save``, streamed in 1 MiB chunks."""
        with engine_errors(f"saving image {ref}"):
            return iter(self.api.get_image(ref, chunk_size=1 << 20))

    def load_image(self, chunks: Iterator[bytes]) -> None:
        """``docker load`` of a streamed tar, never held whole."""
        with engine_errors("loading an image"):
            for _ in self.api.load_image(chunks, quiet=True):  # its answer: read to the end
                pass

    def _post_service(
        self, path: str, params: dict[str, Any], spec: dict[str, Any], auth: dict[str, str]
    ) -> None:
        """POST a whole ServiceSpec with one registry's credentials, which the SDK's
        service calls only take from the host's docker config (``--with-registry-auth``)."""
        body = {key: spec[key] for key in SERVICE_KEYS if key in spec}
        headers = {"X-Registry-Auth": docker.auth.encode_header(auth).decode()}
        url = self.api._url(path)
        response = self.api._post_json(url, data=body, headers=headers, params=params)
        self.api._raise_for_status(response)

    # the watch
    def nodes(self) -> list[dict[str, Any]]:
        with engine_errors("listing the swarm's nodes"):
            return self.api.nodes()

    def events(self, since: int | None) -> DockerEvents:
        """Container deaths, OOM kills and node changes from ``since`` (ns) on, streamed."""
        with engine_errors("reading the engine's events"):
            return DockerEvents(self.api, since)

    def node_usage(self, image: str) -> dict[str, dict[str, float]]:
        with engine_errors("measuring the nodes' disk and memory"):
            return node_usage(self.api, image)


def _log_entry(line: str) -> tuple[str, str, str] | None:
    """``TIMESTAMP k=v,k=v,com.docker.swarm.task.id=ID,… MESSAGE`` (timestamps, details)."""
    stamp, _, rest = line.partition(" ")
    details, _, message = rest.partition(" ")
    attrs = dict(item.partition("=")[::2] for item in details.split(","))
    task = attrs.get("com.docker.swarm.task.id")
    return (stamp, task, message) if task else None
