"""Which server an app environment runs on: where its last deploy went (app.yml's
``server:``), else the control plane's own. Rollback, scale, restart, logs and status
follow it, so they act where the service is.

A control plane apart (shipbot.yml ``local: false``) has no server of its own: what names
no server and has none recorded is told which servers it may name."""

from __future__ import annotations

from core.plane import Plane
from core.swarm.servers import LOCAL


async def server_of(plane: Plane, app: str, env: str) -> str:
    return await plane.db.env_server(app, env) or plane.server


def has_own(plane: Plane) -> bool:
    """Whether the control plane's own server exists (it is absent when shipbot runs apart)."""
    return plane.server != LOCAL or plane.servers.has_local


async def servers_in_use(plane: Plane) -> list[str]:
    """The control plane's own server first (when it has one), then every other one some app
    was deployed to."""
    others = sorted(await plane.db.env_servers() - {plane.server})
    return [plane.server, *others] if has_own(plane) else others
