"""A swarm kept in memory, for the fast tier: the ``SwarmClient`` protocol without an engine.

As httpx's ``MockTransport`` stands in for the network, ``FakeSwarm`` stands in for one
Swarm manager. It keeps services (Spec, Version, UpdateStatus, UpdatedAt), their tasks and
containers in the Engine API's own shapes, and runs rolling updates the way Swarm does:
batches of ``UpdateConfig.Parallelism`` (0: all), start-first or stop-first, and on a task's
failure the ``FailureAction`` (rollback, then ``RollbackConfig``'s pause; or pause).

Nothing happens in real time. Swarm's clock moves one second per ``step()``, and every
``tasks()`` call is one step, so a rollout advances exactly as fast as it is watched.
A test scripts what happens through the images: ``add_image(ref, behaviour)`` and
``behave(ref, behaviour)`` say what tasks of that image do (``HEALTHY``, ``UNHEALTHY``:
the health check fails and the kill ends the container with 137, ``EXITS_0``: the same but
the server exits 0 on SIGTERM as gunicorn does, ``STUCK``: never finishes starting), and
``fail_next`` / ``down`` make the engine stop answering.
"""

from __future__ import annotations

import copy
import hashlib
import json
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from docker.auth import resolve_repository_name

from core.errors import CoreError, DeployError, EngineUnavailable
from core.names import LABEL_APP
from core.swarm import VolumeInUse, split_tag
from core.swarm.testing.jobs import FakeJobs
from core.swarm.testing.networks import FakeNetworks
from core.swarm.testing.orchestrator import (
    EXITS_0,
    HEALTHY,
    STUCK,
    UNHEALTHY,
    Behaviour,
    Rollout,
    Service,
    stamp,
)
from core.swarm.testing.watch import FakeWatch, fake_node

__all__ = ["EXITS_0", "HEALTHY", "STUCK", "UNHEALTHY", "Behaviour", "FakeExec", "FakeSwarm"]


@dataclass
class FakeExec:
    """What a command run by ``exec_stream`` does: its stdout chunks, then its end.

    ``broken_after``: the stream breaks (EngineUnavailable) after that many chunks, as when
    the engine or the connection goes away mid-dump; ``stdin`` receives what was sent.
    """

    chunks: list[bytes] = field(default_factory=list)
    code: int | None = 0
    err: str = ""
    broken_after: int | None = None
    stdin: bytearray = field(default_factory=bytearray)

    def stdout(self) -> Iterator[bytes]:
        for index, chunk in enumerate(self.chunks):
            if index == self.broken_after:
                raise EngineUnavailable("the exec stream from the Docker engine broke (fake)")
            yield chunk

    def exit_code(self) -> int | None:
        return self.code

    def stderr(self) -> str:
        return self.err

    def close(self) -> None:
        pass


ExecHandler = Callable[[str, tuple[str, ...], dict[str, str]], FakeExec]


@dataclass
class _Fault:
    remaining: int
    methods: frozenset[str]
    error: CoreError


class FakeSwarm(FakeWatch, FakeJobs, FakeNetworks):
    """One Swarm manager in memory; see the module docstring for how to script it."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[str] = []  # every protocol method called, in order
        self.down = False  # True: every call raises EngineUnavailable, as a stopped dockerd
        self.objects: dict[tuple[str, str], str] = {}  # (config|secret, name) → id
        self.volumes: dict[str, dict[str, Any]] = {}  # name → the engine's inspect view
        self.build_log: list[dict[str, Any]] = [{"stream": "Step 1/1 : FROM busybox\n"}]
        self.builds: list[dict[str, Any]] = []  # the arguments of every build
        self._faults: list[_Fault] = []
        # exec_stream: (container, argv, env) → what the command does; every call is kept
        self.exec_handler: ExecHandler = lambda container, argv, env: FakeExec()
        self.execs: list[tuple[str, tuple[str, ...], dict[str, str]]] = []
        self.registry: dict[str, tuple[str, str]] = {}  # ref → (digest, image id)
        self.logins: dict[str, dict[str, str]] = {}  # registry host → username, password
        self.registry_auths: list[tuple[str, dict[str, str] | None]] = []  # service, auth
        self.node_list: list[dict[str, Any]] = [fake_node("node1", "fake-1")]
        self.event_log: list[dict[str, Any]] = []
        self.usage: dict[str, dict[str, float]] = {}  # node id → disk_percent, memory_percent

    # scripting (and ``add_image``, ``behave``, ``step``, ``settle`` from Orchestrator)
    def fail_next(self, times: int, *methods: str, error: CoreError | None = None) -> None:
        """The next ``times`` calls of ``methods`` (any method if none) raise ``error``."""
        error = error or EngineUnavailable("the Docker engine stopped answering (fake outage)")
        self._faults.append(_Fault(times, frozenset(methods), error))

    # the protocol (networks: core/swarm/testing/networks.py)
    def inspect_service(self, name: str) -> dict[str, Any] | None:
        self._enter("inspect_service")
        service = self._services.get(name)
        return None if service is None else self._service_view(service)

    def services(self, app: str | None = None) -> list[dict[str, Any]]:
        self._enter("services")
        return [
            self._service_view(s)
            for s in self._services.values()
            if LABEL_APP in s.spec["Labels"] and app in (None, s.spec["Labels"][LABEL_APP])
        ]

    def create_service(
        self, spec: dict[str, Any], registry_auth: dict[str, str] | None = None
    ) -> None:
        self._enter("create_service")
        self.registry_auths.append((spec["Name"], registry_auth))
        if spec["Name"] in self._services:
            raise DeployError(f"creating service {spec['Name']}: the Docker engine said: exists")
        service = Service(f"svc{next(self._ids)}", copy.deepcopy(spec), self.now, self.now)
        for mount in _volume_mounts(spec):  # made on first use, as the engine does
            labels = dict((mount.get("VolumeOptions") or {}).get("Labels") or {})
            view = {"Name": mount["Source"], "Driver": "local", "Labels": labels}
            self.volumes.setdefault(mount["Source"], view)
        self._services[spec["Name"]] = service
        self._keep_replicas(service)

    def update_service(
        self, spec: dict[str, Any], registry_auth: dict[str, str] | None = None
    ) -> None:
        self._enter("update_service")
        self.registry_auths.append((spec["Name"], registry_auth))
        service = self._services.get(spec["Name"])
        if service is None:
            raise DeployError(f"updating service {spec['Name']}: not found")
        template_changed = spec["TaskTemplate"] != service.spec["TaskTemplate"]
        service.previous, service.spec = service.spec, copy.deepcopy(spec)
        service.version += 1
        service.updated_at = self.now
        if template_changed:
            service.status = {
                "State": "updating",
                "StartedAt": stamp(self.now),
                "Message": "update in progress",
            }
            service.rollout = Rollout(spec["UpdateConfig"], rolling_back=False)

    def remove_service(self, name: str) -> None:
        self._enter("remove_service")
        service = self._services.pop(name, None)
        if service is not None:
            self._tasks = [t for t in self._tasks if t["ServiceID"] != service.id]

    def tasks(self, service: str) -> list[dict[str, Any]]:
        self._enter("tasks")
        self.step()
        found = self._services.get(service)
        if found is None:
            raise DeployError(
                f"listing tasks of {service}: not found (service {service} not found)"
            )
        return copy.deepcopy(self._tasks_of(found))

    def service_logs(self, service: str, tail: int) -> list[tuple[str, str, str]]:
        self._enter("service_logs")
        found = self._services.get(service)
        out = []
        for task in self._tasks_of(found) if found else []:
            lines = self._lines(task["Status"]["ContainerStatus"]["ContainerID"])
            out += [(task["CreatedAt"], task["ID"], line) for line in lines[-tail:]]
        return out

    def object_id(self, kind: str, name: str) -> str | None:
        self._enter("object_id")
        return self.objects.get((kind, name))

    def inspect_container(self, container_id: str) -> dict[str, Any] | None:
        self._enter("inspect_container")
        found = self.containers.get(container_id)
        return copy.deepcopy(found) if found else None

    def container_logs(self, container_id: str, tail: int) -> list[str]:
        self._enter("container_logs")
        return self._lines(container_id)[-tail:] if tail else []

    def inspect_volume(self, name: str) -> dict[str, Any] | None:
        self._enter("inspect_volume")
        found = self.volumes.get(name)
        return copy.deepcopy(found) if found else None

    def remove_volume(self, name: str) -> None:
        self._enter("remove_volume")
        users = [s.spec["Name"] for s in self._services.values() if name in _volumes_of(s.spec)]
        if users:
            raise VolumeInUse(f"removing volume {name}: volume is in use by {users[0]}")
        self.volumes.pop(name, None)

    def exec_stream(
        self,
        container_id: str,
        argv: Sequence[str],
        env: dict[str, str] | None = None,
        user: str | None = None,
        stdin: Iterable[bytes] | None = None,
    ) -> FakeExec:
        self._enter("exec_stream")
        call = (container_id, tuple(argv), dict(env or {}))
        self.execs.append(call)
        result = self.exec_handler(*call)
        for chunk in stdin or ():
            result.stdin += chunk
        return result

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
        self._enter("build")
        self.builds.append(
            {
                "context": context,
                "dockerfile": dockerfile,
                "tag": tag,
                "buildargs": buildargs,
                "labels": labels,
                "target": target,
                "memory": memory,
                "timeout": timeout,
            }
        )
        yield from copy.deepcopy(self.build_log)
        if not any("error" in message for message in self.build_log):
            image_id = self.add_image(tag)
            yield {"stream": f"Successfully built {image_id[7:19]}\n"}

    def pull(self, image: str, auth: dict[str, str]) -> None:
        self._enter("pull")
        if image in self.registry:
            self._registry_answer(image, auth)
            self.images.setdefault(image, self.registry[image][1])
            return
        if image not in self.images:
            raise DeployError(f"pulling {image}: manifest for {image} not found")

    def image_id(self, ref: str) -> str | None:
        self._enter("image_id")
        return self.images.get(ref)

    def tag(self, image: str, ref: str) -> None:
        self._enter("tag")
        if image not in self.images:
            raise DeployError(f"tagging {image} as {ref}: not found")
        self.images[ref] = self.images[image]

    def remove_image(self, ref: str) -> None:
        self._enter("remove_image")
        self.images.pop(ref, None)

    def close(self) -> None:
        self.calls.append("close")

    def live_tasks(self, app: str | None = None) -> list[dict[str, Any]]:
        self._enter("live_tasks")
        self.step()
        labelled = {
            s.id
            for s in self._services.values()
            if LABEL_APP in s.spec["Labels"] and app in (None, s.spec["Labels"][LABEL_APP])
        }
        return [
            copy.deepcopy(t)
            for t in self._tasks
            if t["ServiceID"] in labelled and t["DesiredState"] == "running"
        ]

    # registry images: ``push`` puts one in the fake registry, ``logins`` its credentials
    def push(self, ref: str, behaviour: Behaviour = HEALTHY) -> str:
        """``ref`` (name:tag) served by the fake registry; returns the digest it serves."""
        digest = self.publish(f"pushed/{ref}", behaviour, ref)
        self.images.pop(f"pushed/{ref}")
        return digest

    def publish(self, ref: str, behaviour: Behaviour = HEALTHY, served_as: str = "") -> str:
        """``ref`` on the engine and served by the fake registry (as ``served_as``, by
        default ``ref``): an image this engine pulled before. Returns its digest."""
        image_id = self.add_image(ref, behaviour)
        digest = "sha256:" + hashlib.sha256(image_id.encode()).hexdigest()
        served_as = served_as or ref
        name = split_tag(served_as)[0]
        self.registry[served_as] = self.registry[f"{name}@{digest}"] = (digest, image_id)
        return digest

    def registry_digest(self, image: str, auth: dict[str, str]) -> str:
        self._enter("registry_digest")
        if image not in self.registry:
            self._registry_answer(image, auth)
            raise DeployError(f"asking the registry for {image}: manifest unknown")
        return self._registry_answer(image, auth)

    def check_login(self, auth: dict[str, str]) -> None:
        self._enter("check_login")
        host = resolve_repository_name(f"{auth['serveraddress'].split('://')[-1]}/x")[0]
        wanted = self.logins.get(host)
        if wanted is not None and {k: auth.get(k) for k in ("username", "password")} != wanted:
            raise DeployError(
                f'logging in to {host}: the Docker engine said: Get "https://{host}/v2/": '
                "unauthorized: incorrect username or password"
            )

    def _registry_answer(self, image: str, auth: dict[str, str]) -> str:
        host = resolve_repository_name(image)[0]
        wanted = self.logins.get(host)
        if wanted is not None and {k: auth.get(k) for k in ("username", "password")} != wanted:
            raise DeployError(f"{image}: the Docker engine said: unauthorized: authentication")
        return self.registry[image][0] if image in self.registry else ""

    # the engine's side
    def remove_container(self, container_id: str) -> None:
        self._enter("remove_container")
        self.containers.pop(container_id, None)
        self._logs.pop(container_id, None)

    def save_image(self, ref: str) -> Iterator[bytes]:
        self._enter("save_image")
        image_id = self.images.get(ref)
        if image_id is None:
            raise DeployError(f"saving image {ref}: no such image")
        # the saved bytes carry what the image's tasks do, as a real tar carries its layers
        behaviour = asdict(self.behaviours.get(image_id, HEALTHY))
        saved = {"ref": ref, "id": image_id, "behaviour": behaviour}
        return iter([json.dumps(saved).encode()])

    def load_image(self, chunks: Iterator[bytes]) -> None:
        self._enter("load_image")
        saved = json.loads(b"".join(chunks))
        self.images[saved["ref"]] = saved["id"]
        behaviour = saved["behaviour"]
        self.behaviours[saved["id"]] = Behaviour(**{**behaviour, "log": tuple(behaviour["log"])})

    def _enter(self, method: str) -> None:
        self.calls.append(method)
        # An unanswered call still takes time (the client's timeout): the clock moves on,
        # so a deadline on this clock ends an outage.
        if self.down:
            self.now += 1.0
            raise EngineUnavailable(f"{method}: the Docker engine stopped answering (fake)")
        for fault in self._faults:
            if fault.remaining > 0 and (not fault.methods or method in fault.methods):
                fault.remaining -= 1
                self.now += 1.0
                raise fault.error

    def _service_view(self, service: Service) -> dict[str, Any]:
        view: dict[str, Any] = {
            "ID": service.id,
            "Version": {"Index": service.version},
            "CreatedAt": stamp(service.created_at),
            "UpdatedAt": stamp(service.updated_at),
            "Spec": service.spec,
        }
        if service.previous is not None:
            view["PreviousSpec"] = service.previous
        if service.status is not None:
            view["UpdateStatus"] = service.status
        return copy.deepcopy(view)


def _volume_mounts(spec: dict[str, Any]) -> list[dict[str, Any]]:
    mounts = spec["TaskTemplate"]["ContainerSpec"].get("Mounts") or []
    return [m for m in mounts if m.get("Type") == "volume"]


def _volumes_of(spec: dict[str, Any]) -> list[str]:
    return [m["Source"] for m in _volume_mounts(spec)]
