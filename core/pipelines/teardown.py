"""Removing a preview: its service (and so its routes), volumes, release images, DNS
records, and the store's rows about it. The audit keeps its history.

Traefik keeps a certificate it obtained in its ACME store until it expires (it has no way
to drop one); with the router gone, nothing serves it.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

from core.config import DnsConfig
from core.deploy import networks
from core.deploy.apply import check_owner
from core.edge import cloudflare
from core.edge.dns import DnsError, writes
from core.events import Event, Outcome, Progress
from core.names import network_name, service_name
from core.ownership import foreign
from core.pipelines import PipelineError
from core.pipelines.preview import env_name
from core.plane import Plane
from core.swarm import SwarmClient, VolumeInUse, rollout


def volumes_of(service: dict[str, Any] | None, row: dict[str, Any] | None) -> list[str]:
    """The named volumes a preview's service mounts, and those its row remembers."""
    names = set(json.loads((row or {}).get("volumes") or "[]"))
    template = ((service or {}).get("Spec") or {}).get("TaskTemplate") or {}
    for mount in (template.get("ContainerSpec") or {}).get("Mounts") or []:
        if mount.get("Type") == "volume":
            names.add(mount["Source"])
    return sorted(names)


async def _remove_volume(plane: Plane, swarm: SwarmClient, volume: str) -> None:
    try:
        await rollout.remove_volume(swarm, volume, plane.clock)
    except VolumeInUse as exc:
        raise PipelineError(str(exc)) from exc


async def close_preview(
    plane: Plane, app: str, number: int, dns: DnsConfig | None
) -> AsyncIterator[Event]:
    env = env_name(number)
    name = service_name(app, env)
    swarm = await plane.servers.client(plane.server)
    row = await plane.db.in_thread(lambda: plane.store.preview(app, number))
    current = await asyncio.to_thread(swarm.inspect_service, name)
    check_owner(current, app, env)
    done: list[str] = []
    if current is not None:
        yield Progress(f"removing service {name} and its routes")
        await asyncio.to_thread(swarm.remove_service, name)
        done.append(f"service {name}")
    for volume in volumes_of(current, row):
        if foreign(await asyncio.to_thread(swarm.inspect_volume, volume), plane.id):
            yield Progress(f"volume {volume} is another control plane's: kept")
            continue
        yield Progress(f"removing volume {volume}")
        await _remove_volume(plane, swarm, volume)
        done.append(f"volume {volume}")
    network = network_name(app, env)
    if network in (await asyncio.to_thread(swarm.network_names)).values():
        async for event in networks.teardown(plane, swarm, network):
            yield event
        done.append(f"network {network}")
    for release in await plane.db.in_thread(lambda: plane.store.releases(app, env, limit=1000)):
        await asyncio.to_thread(swarm.remove_image, release.image)
    if dns is not None and row is not None and row.get("domain"):
        try:
            deleted = writes(await cloudflare.sync(dns, app, env, []))
        except DnsError as exc:
            done.append(f"DNS not cleaned: {exc}; delete the records of {row['domain']} by hand")
        else:
            done.extend(action.shown for action in deleted)
    gone = await asyncio.to_thread(plane.store.forget_environment, app, env)
    rows = sum(gone.values())
    if not done and not rows:
        yield Outcome(True, f"{app} has no preview {env}: nothing to remove")
        return
    done.append(f"{rows} records ({', '.join(f'{k} {v}' for k, v in gone.items() if v)})")
    yield Outcome(True, f"preview {env} of {app} removed", done, {"app": app, "env": env})
