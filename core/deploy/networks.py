"""Before a deploy's service is applied: its networks exist, the databases it names and
the edge that routes it are on its network. When a preview closes, its network goes.
Each step that changes something says so.

An app environment's network (core/names.py ``network_name``) carries shipbot's
ownership labels; linked apps' networks are made with their owner's labels.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

from core.appspec import AppSpec
from core.data import db_networks, db_spec
from core.deploy import links
from core.edge.operate import sync_networks
from core.events import Event, Progress
from core.names import network_labels, network_name
from core.plane import Plane
from core.swarm import SwarmClient, rollout


async def prepare(
    plane: Plane, swarm: SwarmClient, server: str, spec: AppSpec, env: str
) -> AsyncIterator[Event]:
    own = network_name(spec.name, env)
    for app in (spec.name, *spec.links):
        await asyncio.to_thread(
            swarm.ensure_network, network_name(app, env), network_labels(app, env, plane.id)
        )
    for db in spec.databases:  # each on its own server: the ones in this swarm join
        if await asyncio.to_thread(db_networks.shares_swarm, plane, db, server):
            async for event in db_networks.join(plane, swarm, db, (spec.name, env)):
                yield event
    if spec.domains:  # the edge of the swarm that runs it (each server added has its own)
        here = server == plane.server
        async for event in sync_networks(plane, swarm, joining=own, here=here):
            yield event


async def teardown(
    plane: Plane, swarm: SwarmClient, network: str, *, here: bool = True
) -> AsyncIterator[Event]:
    """After the service of an app environment is gone: the edge and the databases leave
    its ``network``, then the network goes. Yields one Progress per step. ``here``:
    ``swarm`` is the control plane's own server's (core/deploy/undeploy.py)."""
    async for event in sync_networks(plane, swarm, here=here):
        yield event
    users = [s["Spec"]["Name"] for s in await asyncio.to_thread(swarm.services)]
    users += [
        db_spec.service_name(row["name"])
        for row in await plane.db.in_thread(lambda: plane.store.databases())
    ]
    for service in users:
        if await asyncio.to_thread(links.leave, swarm, service, network):
            yield Progress(f"{service} left network {network}")
    yield Progress(f"removing network {network}")
    await rollout.remove_network(swarm, network, plane.clock)


def confine(
    plane: Plane, swarm: SwarmClient, spec: dict[str, Any], app: str, env: str
) -> dict[str, Any]:
    """A stored release's spec on the networks it may use now (blocking): its own, and
    those of links still granted. A release from before per-app networks, or one whose
    link was revoked since, gets no more when it is rolled back to or runs a job."""
    links_now = plane.store.links(app)
    granted = {network_name(row["other"], env) for row in links_now if row["env"] == env}
    template = spec["TaskTemplate"]
    kept = [n["Target"] for n in template.get("Networks") or [] if n["Target"] in granted]
    own = network_name(app, env)
    swarm.ensure_network(own, network_labels(app, env, plane.id))
    networks = [{"Target": name} for name in [own, *kept]]
    return {**spec, "TaskTemplate": {**template, "Networks": networks}}
