"""What runs: services, their tasks and their logs, read from Swarm (the source of truth)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

from core.deploy.spec import LABEL_APP, LABEL_ENV, LABEL_RELEASE, image_ref, service_name
from core.errors import CoreError, DeployError
from core.ownership import ours
from core.plane import Plane
from core.servers.where import server_of, servers_in_use
from core.store.models import RELEASE_LIVE
from core.swarm import SwarmClient, comparable_image, running_tasks


@dataclass(frozen=True)
class ServiceStatus:
    app: str
    env: str
    release: str
    running: int
    desired: int
    healthchecked: bool
    update_state: str | None
    unknown: str | None = None  # why the tasks could not be read: "server eu-2 unreachable"


def task_image(task: dict[str, Any]) -> str:
    return comparable_image(task["Spec"]["ContainerSpec"]["Image"])


def by_service(tasks: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """Tasks grouped by their service's id."""
    out: dict[str, list[dict[str, Any]]] = {}
    for task in tasks:
        out.setdefault(task["ServiceID"], []).append(task)
    return out


def summarize(
    services: list[dict[str, Any]],
    tasks: list[dict[str, Any]],
    apps: set[str],
    plane_id: str | None = None,
) -> list[ServiceStatus]:
    """Pure: one row per service of ``apps``, its running tasks counted from ``tasks`` (the
    whole swarm's, listed once), sorted by app and environment."""
    grouped = by_service(tasks)
    out = []
    for service in services:
        spec = service["Spec"]
        labels = spec.get("Labels", {})
        if not ours(service, plane_id, apps):  # another control plane's, on a shared swarm
            continue
        out.append(
            ServiceStatus(
                app=labels[LABEL_APP],
                env=labels.get(LABEL_ENV, "?"),
                release=labels.get(LABEL_RELEASE, "?"),
                running=len(running_tasks(grouped.get(service["ID"], []))),
                desired=spec.get("Mode", {}).get("Replicated", {}).get("Replicas", 0),
                healthchecked="Healthcheck" in spec["TaskTemplate"]["ContainerSpec"],
                update_state=(service.get("UpdateStatus") or {}).get("State"),
            )
        )
    return sorted(out, key=lambda s: (s.app, s.env))


def _status(
    swarm: SwarmClient, apps: set[str], name: str | None, plane_id: str
) -> list[ServiceStatus]:
    # two calls whatever the number of services: the list, then every live task at once
    services = swarm.services(name)
    return summarize(services, swarm.live_tasks(name) if services else [], apps, plane_id)


async def status(plane: Plane, name: str | None = None) -> list[ServiceStatus]:
    """Services of this control plane's apps (one app's when ``name`` is given), every
    server read at once: one that is slow or away costs its own time-out, not the sum."""
    apps = {a.name for a in await plane.db.in_thread(lambda: plane.store.list_apps())}
    servers = await servers_in_use(plane)

    async def one(server: str) -> list[ServiceStatus] | CoreError:
        try:  # a server away hides none of the others (``status`` names it from its nodes)
            swarm = await plane.servers.client(server)
            return await asyncio.to_thread(_status, swarm, apps, name, plane.id)
        except CoreError as exc:
            return exc

    found = await asyncio.gather(*(one(s) for s in servers))
    away = [f for f in found if isinstance(f, CoreError)]
    if away and len(away) == len(servers):
        raise away[0]
    out = [row for rows in found if not isinstance(rows, CoreError) for row in rows]
    gone = {server for server, f in zip(servers, found, strict=True) if isinstance(f, CoreError)}
    if gone:
        out += await plane.db.in_thread(lambda: unread(plane, gone, apps, name))
    return sorted(out, key=lambda s: (s.app, s.env))


def unread(plane: Plane, away: set[str], apps: set[str], name: str | None) -> list[ServiceStatus]:
    """A row for each live release on a server that did not answer (blocking: the store):
    what shipbot last deployed there, its tasks unknown, never left out of ``status``."""
    out = []
    placed = {(app, env): server for app, env, server in plane.store.env_server_rows()}
    for release in plane.store.releases_with_status(RELEASE_LIVE, name):
        server = placed.get((release.app, release.env), plane.server)
        if server in away and release.app in apps:
            out.append(
                ServiceStatus(
                    app=release.app,
                    env=release.env,
                    release=str(release.number),
                    running=0,
                    desired=0,
                    healthchecked=False,
                    update_state=None,
                    unknown=f"unknown (server {server} unreachable)",
                )
            )
    return out


def pick_tasks(tasks: list[dict[str, Any]], image: str | None, running_only: bool) -> set[str]:
    """Whose lines ``logs`` shows: tasks of ``image`` (None: any), running ones or all."""
    chosen = running_tasks(tasks) if running_only else tasks
    return {t["ID"] for t in chosen if image is None or task_image(t) == image}


async def logs(
    plane: Plane,
    name: str,
    env: str,
    *,
    tail: int = 50,
    release: int | None = None,
    everything: bool = False,
) -> list[str]:
    """The last lines of the live release's running tasks in time order; ``release``: that
    release's tasks, running or not; ``everything``: every task the service kept."""
    swarm = await plane.servers.client(await server_of(plane, name, env))
    svc = service_name(name, env)
    service = await asyncio.to_thread(swarm.inspect_service, svc)
    if service is None:
        raise DeployError(f"{name} is not running on {env}: deploy it first")
    tasks = await asyncio.to_thread(swarm.tasks, svc)
    if everything:
        ids = pick_tasks(tasks, None, running_only=False)
    elif release is not None:
        image = await release_image(plane, name, env, release)
        ids = pick_tasks(tasks, image, running_only=False)
    else:
        live = service["Spec"].get("Labels", {}).get(LABEL_RELEASE)
        image = (
            await release_image(plane, name, env, int(live)) if live and live.isdigit() else None
        )
        ids = pick_tasks(tasks, image, running_only=True)
    entries = await asyncio.to_thread(swarm.service_logs, svc, tail)
    lines = sorted((stamp, line) for stamp, task, line in entries if task in ids)
    return [line for _, line in lines[-tail:]]


async def release_image(plane: Plane, name: str, env: str, number: int) -> str:
    """The image a release's tasks run: its own tag, or the registry digest it was deployed
    by (``deploy --image``)."""
    found = await plane.db.in_thread(lambda: plane.store.release(name, env, number))
    return comparable_image(found.image) if found else image_ref(name, number)
