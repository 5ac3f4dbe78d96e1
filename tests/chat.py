"""Helpers for driving the console chat path in tests, the way a person would type."""

from __future__ import annotations

import contextlib
import time
import urllib.request
from typing import Any

import docker.errors

from commands.dispatch import ChatRequest, Dispatcher
from commands.replies import Failure, Log, Reply, Result, Step, Table


async def say(bot: Dispatcher, text: str, user: str = "console:alice") -> list[Reply]:
    return await bot.run(ChatRequest("console", user, "console", text))


def result(replies: list[Reply]) -> Result:
    found = [r for r in replies if isinstance(r, Result)]
    assert len(found) == 1, replies
    return found[0]


def failure(replies: list[Reply]) -> Failure:
    found = [r for r in replies if isinstance(r, Failure)]
    assert len(found) == 1, replies
    return found[0]


def table(replies: list[Reply]) -> Table:
    found = [r for r in replies if isinstance(r, Table)]
    assert len(found) == 1, replies
    return found[0]


def steps(replies: list[Reply]) -> list[str]:
    return [r.text for r in replies if isinstance(r, Step)]


def logs(replies: list[Reply]) -> list[str]:
    return [r.text for r in replies if isinstance(r, Log)]


def task_addresses(client: Any, service: str) -> list[str]:
    """Loopback-reachable addresses of a service's running tasks on this node.

    Each task on an overlay network also sits on docker_gwbridge, whose gateway is this host.
    """
    bridge = client.api.inspect_network("docker_gwbridge")["Containers"]
    out = []
    for task in client.api.tasks(filters={"service": service, "desired-state": "running"}):
        if task["Status"]["State"] != "running":
            continue
        container = task["Status"]["ContainerStatus"]["ContainerID"]
        out.append(bridge[container]["IPv4Address"].split("/")[0])
    return sorted(out)


def fetch(address: str, port: int = 8080) -> str:
    with urllib.request.urlopen(f"http://{address}:{port}/", timeout=5) as response:
        return response.read().decode()


def remove_apps(client: Any, apps: list[str], timeout: float = 15.0) -> None:
    """Remove apps' services, wait for their containers to go, then their release images."""
    for app in apps:
        for service in client.api.services(filters={"label": f"shipbot.app={app}"}):
            with contextlib.suppress(docker.errors.NotFound):
                client.api.remove_service(service["ID"])
    prefixes = tuple(f"{app}-" for app in apps)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        names = [
            c["Labels"].get("com.docker.swarm.service.name", "")
            for c in client.api.containers(all=True)
        ]
        if not any(name.startswith(prefixes) for name in names):
            break
        time.sleep(0.2)
    # by tag, never by id: the same build for another app (another module's, on another
    # worker) has the same image id, and a forced removal by id untags theirs too
    for app in apps:
        for image in client.api.images(name=f"shipbot/{app}"):
            for tag in image.get("RepoTags") or []:
                if tag.startswith(f"shipbot/{app}:"):
                    with contextlib.suppress(docker.errors.APIError):  # a container may still stop
                        client.api.remove_image(tag, force=True)


def remove_volumes(client: Any, volumes: list[str], timeout: float = 60.0) -> None:
    """Remove ``volumes``, retrying while a removed service's container still holds one."""
    deadline = time.monotonic() + timeout
    left = list(volumes)
    while left and time.monotonic() < deadline:
        for volume in list(left):
            try:
                client.api.remove_volume(volume)
                left.remove(volume)
            except docker.errors.NotFound:
                left.remove(volume)
            except docker.errors.APIError:  # in use until the task's container is gone
                pass
        time.sleep(0.3)
