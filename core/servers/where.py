"""Which server an app environment runs on: where its last deploy went (app.yml's
``server:``), else the control plane's own. Rollback, scale, restart, logs and status
follow it, so they act where the service is."""

from __future__ import annotations

from core.plane import Plane


async def server_of(plane: Plane, app: str, env: str) -> str:
    return await plane.db.in_thread(lambda: plane.store.env_server(app, env)) or plane.server


async def servers_in_use(plane: Plane) -> list[str]:
    """The control plane's own server first, then every other one some app was deployed to."""
    others = await plane.db.in_thread(lambda: plane.store.env_servers())
    return [plane.server, *sorted(others - {plane.server})]
