"""The two worlds the contract suite runs in: the in-memory ``FakeSwarm`` and the real
engine, behind one small interface, so each test is written once.

A world gives the test its swarm client, unique names, images whose tasks serve on the
health-checked port (``healthy``) or not (``unhealthy``, ``exits_0``), one-shot commands for
jobs, and
``until``: the fake's clock moves one Swarm second per try; the engine is polled every
0.25 s up to a deadline. Everything a world made is removed by ``close``.
"""

from __future__ import annotations

import contextlib
import json
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol, TypeVar

from core.errors import DeployError
from core.swarm import SwarmClient
from core.swarm.testing import EXITS_0, HEALTHY, UNHEALTHY, FakeSwarm

T = TypeVar("T")
# what each kind of image runs: the health check asks :8080; ``exits_0`` serves nothing
# and ends with 0 on SIGTERM, as gunicorn does
COMMANDS = {
    "healthy": ["httpd", "-f", "-p", "8080", "-h", "/www"],
    "unhealthy": ["httpd", "-f", "-p", "9999", "-h", "/www"],
    "exits_0": ["sh", "-c", "trap 'exit 0' TERM; while true; do sleep 0.2; done"],
}
FAKE_STEPS = 120  # Swarm seconds a fake world waits for a state
ENGINE_SECONDS = 90.0  # real seconds the engine world waits for a state
ENGINE_POLL = 0.25


def job_command(code: int, line: str) -> tuple[list[str], dict[str, str]]:
    """A one-shot command (argv, env) that prints ``line`` and exits ``code``."""
    return ["sh", "-c", 'echo "$SAY"; exit "$CODE"'], {"SAY": line, "CODE": str(code)}


class World(Protocol):
    swarm: SwarmClient
    prefix: str

    def image(self, kind: str) -> str: ...
    def until(self, check: Callable[[], T | None], what: str) -> T: ...
    def close(self) -> None: ...


class FakeWorld:
    def __init__(self) -> None:
        self.swarm = FakeSwarm()
        self.prefix = f"ct{uuid.uuid4().hex[:8]}"
        # a job's task does what ``job_command`` asks of the real engine's shell
        self.swarm.job_handler = lambda argv, env: (int(env["CODE"]), [env["SAY"]])

    def image(self, kind: str) -> str:
        ref = f"{self.prefix}/{kind}:1"
        behaviours = {"healthy": HEALTHY, "unhealthy": UNHEALTHY, "exits_0": EXITS_0}
        self.swarm.add_image(ref, behaviours[kind])
        return ref

    def until(self, check: Callable[[], T | None], what: str) -> T:
        for _ in range(FAKE_STEPS):
            found = check()
            if found:
                return found
            self.swarm.step()
        raise AssertionError(f"the fake swarm never showed {what} in {FAKE_STEPS} steps")

    def close(self) -> None:
        self.swarm.close()


class EngineWorld:
    def __init__(self, folder: Path) -> None:
        from core.swarm.docker_api import DockerSwarm

        self.swarm = DockerSwarm.connect()
        self.prefix = f"ct{uuid.uuid4().hex[:8]}"
        self.folder = folder
        self.images: list[str] = []

    def image(self, kind: str) -> str:
        ref = f"{self.prefix}/{kind}:1"
        context = self.folder / kind
        context.mkdir()
        (context / "Dockerfile").write_text(
            "FROM busybox\n"
            "RUN mkdir -p /www && echo ok > /www/index.html\n"
            f"CMD {json.dumps(COMMANDS[kind])}\n"
        )
        self.images.append(ref)
        messages = list(self.swarm.build(str(context), "Dockerfile", ref, {}, {}))
        assert not [m for m in messages if "error" in m], messages
        return ref

    def until(self, check: Callable[[], T | None], what: str) -> T:
        deadline = time.monotonic() + ENGINE_SECONDS
        while time.monotonic() < deadline:
            found = check()
            if found:
                return found
            time.sleep(ENGINE_POLL)
        raise AssertionError(f"the engine never showed {what} in {ENGINE_SECONDS:g}s")

    def close(self) -> None:
        """Removes this world's services, their (job) containers, networks and images."""
        api: Any = self.swarm.api  # type: ignore[attr-defined]
        for service in api.services():
            if service["Spec"]["Name"].startswith(self.prefix):
                self.swarm.remove_service(service["Spec"]["Name"])
        deadline = time.monotonic() + ENGINE_SECONDS
        while time.monotonic() < deadline:
            ours = [
                c["Id"]
                for c in api.containers(all=True)
                if c["Labels"].get("com.docker.swarm.service.name", "").startswith(self.prefix)
            ]
            for container in ours:
                self.swarm.remove_container(container)
            networks = [n for n in self.swarm.network_names().values() if self.prefix in n]
            for network in networks:
                with contextlib.suppress(DeployError):  # in use yet, or going already
                    self.swarm.remove_network(network)
            if not ours and not networks:
                break
            time.sleep(ENGINE_POLL)
        for ref in self.images:  # once the containers that used it are gone
            self.until(lambda r=ref: self.swarm.remove_image(r) or not self.swarm.image_id(r), ref)
        self.swarm.close()
