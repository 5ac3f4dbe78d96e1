"""Undeploying one app environment: its service (and so its routes), its network, its
release images, the DNS records shipbot's sync made for it, its named volumes when asked,
and the store's rows about it. `apps remove` and a preview's close both run this.

Only what carries this control plane's ``shipbot.plane`` label is removed; anything else
under the same name (another control plane's, or one made by hand) is kept and said so.
Each verdict is read back from Swarm after the action: the tally says what was seen gone.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass, field
from typing import Any

from core.config import DnsConfig
from core.deploy import networks
from core.deploy.apply import check_owner
from core.edge import cloudflare
from core.edge.dns import DnsError, writes
from core.errors import DeployError
from core.events import Event, Progress
from core.names import LABEL_PLANE, network_name, service_name
from core.ownership import labels_of
from core.plane import Plane
from core.swarm import SwarmClient, VolumeInUse, rollout

NETWORK_GONE_SECONDS = 10.0


@dataclass
class Tally:
    """What an undeploy removed and what it kept (each with why, or how to remove it)."""

    removed: list[str] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)
    records: dict[str, int] = field(default_factory=dict)  # store rows deleted, per table


def volumes_of(service: dict[str, Any] | None, known: Iterable[str] = ()) -> list[str]:
    """The named volumes ``service`` mounts, and ``known`` ones (a row, a stored spec)."""
    names = set(known)
    template = ((service or {}).get("Spec") or {}).get("TaskTemplate") or {}
    for mount in (template.get("ContainerSpec") or {}).get("Mounts") or []:
        if mount.get("Type") == "volume":
            names.add(mount["Source"])
    return sorted(names)


def _whose(found: dict[str, Any], plane_id: str) -> str | None:
    """Why ``found`` is not this control plane's to remove (None: it is)."""
    owner = labels_of(found).get(LABEL_PLANE)
    if owner == plane_id:
        return None
    return f"control plane {owner}'s" if owner else "not labelled as this control plane's"


def _mine(found: dict[str, Any] | None, what: str, plane_id: str, tally: Tally) -> bool:
    """``found`` is there and this control plane's; another's is kept and said so."""
    if found is None:
        return False
    if why := _whose(found, plane_id):
        tally.kept.append(f"{what} ({why}: not touched)")
        return False
    return True


async def undeploy(
    plane: Plane,
    swarm: SwarmClient,
    app: str,
    env: str,
    tally: Tally,
    *,
    delete_volumes: bool,
    volumes: Iterable[str] = (),
    images: Iterable[str] = (),
    dns: DnsConfig | None = None,
    here: bool = True,
) -> AsyncIterator[Event]:
    """Undeploy ``app``/``env`` on ``swarm`` (``here``: the control plane's own server),
    filling ``tally`` (the caller forgets the store's rows). ``volumes``: those known
    besides the service's mounts; ``images``: the release images to remove; ``dns``: set
    when its records are to go."""
    name = service_name(app, env)
    current = await asyncio.to_thread(swarm.inspect_service, name)
    check_owner(current, app, env)
    if current is not None and not _mine(current, f"service {name}", plane.id, tally):
        return
    if current is not None:
        yield Progress(f"removing service {name} and its routes")
        await asyncio.to_thread(swarm.remove_service, name)
        if await asyncio.to_thread(swarm.inspect_service, name) is None:
            tally.removed.append(f"service {name}")
        else:
            tally.kept.append(f"service {name} (still listed by Swarm: `docker service rm {name}`)")
    for volume in volumes_of(current, volumes):
        async for event in _volume(plane, swarm, volume, tally, delete_volumes):
            yield event
    async for event in _network(plane, swarm, network_name(app, env), tally, here):
        yield event
    await _images(plane, swarm, sorted(set(images)), tally)
    if dns is not None:
        try:
            deleted = writes(await cloudflare.sync(dns, app, env, [], plane.clients))
        except DnsError as exc:
            tally.kept.append(f"DNS records of {app} ({env}): {exc}; delete them by hand")
        else:
            tally.removed.extend(
                f"DNS record {a.old.type} {a.old.name} → {a.old.content}" if a.old else a.shown
                for a in deleted
            )


async def _volume(
    plane: Plane, swarm: SwarmClient, volume: str, tally: Tally, delete: bool
) -> AsyncIterator[Event]:
    found = await asyncio.to_thread(swarm.inspect_volume, volume)
    if not _mine(found, f"volume {volume}", plane.id, tally):
        return
    if not delete:
        tally.kept.append(
            f"volume {volume} (its data: `docker volume rm {volume}`, or run again with "
            "--delete-volumes)"
        )
        return
    yield Progress(f"removing volume {volume}")
    try:
        await rollout.remove_volume(swarm, volume, plane.clock)
    except VolumeInUse as exc:
        raise DeployError(f"{exc}; run the removal again once it is free") from exc
    tally.removed.append(f"volume {volume}")


async def _network(
    plane: Plane, swarm: SwarmClient, network: str, tally: Tally, here: bool
) -> AsyncIterator[Event]:
    found = await asyncio.to_thread(swarm.inspect_network, network)
    if not _mine(found, f"network {network}", plane.id, tally):
        return
    async for event in networks.teardown(plane, swarm, network, here=here):
        yield event
    # the manager lists a removed overlay network for a moment more
    deadline = plane.clock.monotonic() + NETWORK_GONE_SECONDS
    while await asyncio.to_thread(swarm.inspect_network, network) is not None:
        if plane.clock.monotonic() > deadline:
            tally.kept.append(f"network {network} (still there: `docker network rm {network}`)")
            return
        await plane.clock.sleep(rollout.VOLUME_POLL_SECONDS)
    tally.removed.append(f"network {network}")


async def _images(plane: Plane, swarm: SwarmClient, images: list[str], tally: Tally) -> None:
    """The removed service's stopped containers still hold its image for a moment: each
    is tried until it goes, all within one ``VOLUME_RELEASE_SECONDS``."""
    deadline = plane.clock.monotonic() + rollout.VOLUME_RELEASE_SECONDS
    for image in images:
        if await asyncio.to_thread(swarm.image_id, image) is None:
            continue  # not on this server
        while True:
            await asyncio.to_thread(swarm.remove_image, image)
            if await asyncio.to_thread(swarm.image_id, image) is None:
                tally.removed.append(f"image {image}")
                break
            if plane.clock.monotonic() > deadline:
                tally.kept.append(f"image {image} (in use: `docker image rm {image}` later)")
                break
            await plane.clock.sleep(rollout.VOLUME_POLL_SECONDS)


def spec_volumes(spec: dict[str, Any]) -> list[str]:
    """The named volumes a stored release's service spec mounts."""
    return volumes_of({"Spec": spec})


def row_volumes(row: dict[str, Any] | None) -> list[str]:
    """The volumes a preview's row remembers."""
    return json.loads((row or {}).get("volumes") or "[]")
