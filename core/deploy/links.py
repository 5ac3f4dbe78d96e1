"""Links between apps: ``links: [other]`` in app.yml asks, an admin's ``link grant``
allows. A granted link puts the app's service (and its jobs) on ``other``'s network in
the same environment too (core/deploy/spec.py ``networks``): the pair reaches each other,
and every other pair stays apart. What is on ``other``'s network is then reachable by
name: its service, and the databases attached to it (which still want their password).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from core.apps import get_app
from core.appspec import AppSpec
from core.errors import CoreError
from core.events import Event, Outcome, Progress
from core.names import network_name, service_name
from core.plane import Plane
from core.servers.where import server_of
from core.swarm import SwarmClient


class LinkError(CoreError):
    """An app asks to reach another it may not; the message says who can allow it."""


def check(plane: Plane, spec: AppSpec, env: str) -> None:
    """Refuse a ``links:`` entry that no admin granted for ``env`` (blocking)."""
    granted = {row["other"] for row in plane.store.links(spec.name) if row["env"] == env}
    for other in spec.links:
        if other == spec.name:
            raise LinkError(f"{spec.name}'s app.yml links to itself; remove it from links:")
        if other not in granted:
            raise LinkError(
                f"{spec.name}'s app.yml links to {other} in {env}, which no admin granted: "
                f"an admin runs `link grant {spec.name} {other} --env {env}`; nothing was "
                "changed"
            )


async def grant(plane: Plane, app: str, other: str, env: str, *, user: str) -> bool:
    """Let ``app`` reach ``other`` in ``env``; False when it already could."""
    if app == other:
        raise LinkError(f"{app} reaches itself already")
    for name in (app, other):
        await asyncio.to_thread(get_app, plane.store, name)
    return await plane.db.in_thread(
        lambda: plane.store.grant_link(app, other, env, user, plane.clock.time())
    )


async def revoke(plane: Plane, app: str, other: str, env: str) -> AsyncIterator[Event]:
    """Forget the grant, and take ``app``'s live service off ``other``'s network now."""
    if not await plane.db.in_thread(lambda: plane.store.revoke_link(app, other, env)):
        yield Outcome(False, f"{app} has no link to {other} in {env}: nothing was changed")
        return
    swarm = await plane.servers.client(await server_of(plane, app, env))
    name, network = service_name(app, env), network_name(other, env)
    if await asyncio.to_thread(leave, swarm, name, network):
        yield Progress(f"{name} left network {network} (a rolling update)")
    yield Outcome(
        True,
        f"{app} may no longer reach {other} in {env}",
        [f"a deploy of {app} whose app.yml still lists links: [{other}] is refused"],
    )


def leave(swarm: SwarmClient, service: str, network: str) -> bool:
    """Take ``service`` off ``network`` (blocking); False when it was not on it."""
    current = swarm.inspect_service(service)
    if current is None:
        return False
    names = swarm.network_names()
    spec = current["Spec"]
    template = spec["TaskTemplate"]
    kept = [n for n in template.get("Networks") or [] if names.get(n["Target"]) != network]
    if len(kept) == len(template.get("Networks") or []):
        return False
    swarm.update_service({**spec, "TaskTemplate": {**template, "Networks": kept}})
    return True
