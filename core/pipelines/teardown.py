"""Removing a preview: its service (and so its routes), volumes, release images, DNS
records, and the store's rows about it (core/deploy/undeploy.py). The audit keeps its
history.

Traefik keeps a certificate it obtained in its ACME store until it expires (it has no way
to drop one); with the router gone, nothing serves it.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from core.config import DnsConfig
from core.deploy.undeploy import Tally, row_volumes, undeploy
from core.events import Event, Outcome
from core.pipelines.preview import env_name
from core.plane import Plane
from core.servers.where import server_of


async def close_preview(
    plane: Plane, app: str, number: int, dns: DnsConfig | None
) -> AsyncIterator[Event]:
    env = env_name(number)
    # where its last deploy went (the registered app.yml may have moved previews since)
    server = await server_of(plane, app, env)
    swarm = await plane.servers.client(server)
    row = await plane.db.in_thread(lambda: plane.store.preview(app, number))
    releases = await plane.db.in_thread(lambda: plane.store.releases(app, env, limit=1000))
    tally = Tally()
    steps = undeploy(
        plane,
        swarm,
        app,
        env,
        tally,
        delete_volumes=True,  # a preview's volumes are its own: they go with it
        volumes=row_volumes(row),
        images=[release.image for release in releases],
        dns=dns if row is not None and row.get("domain") else None,
        here=server == plane.server,
    )
    async with contextlib.aclosing(steps) as events:
        async for event in events:
            yield event
    tally.records = await asyncio.to_thread(plane.store.forget_environment, app, env)
    rows = sum(tally.records.values())
    done = [*tally.removed, *(f"kept: {what}" for what in tally.kept)]
    if not done and not rows:
        yield Outcome(True, f"{app} has no preview {env}: nothing to remove")
        return
    counts = ", ".join(f"{k} {v}" for k, v in tally.records.items() if v)
    done.append(f"{rows} records ({counts})")
    yield Outcome(True, f"preview {env} of {app} removed", done, {"app": app, "env": env})
