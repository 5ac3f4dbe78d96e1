"""Which server a database or an app's volume lives on, and its swarm client.

A managed database lives on the server ``db create --server S`` named (the control plane's
own, ``plane.server``, by default); its row records it, and everything after follows it:
status, attach, backups, verifies, restores, removal. An app's named volume lives where
its environment was last deployed. Reaching a server that is unknown or does not answer
is an error that names the server and what to pass or check instead
(core/servers/where.py).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from core.plane import Plane
from core.servers import where
from core.swarm import SwarmClient


async def for_create(plane: Plane, server: str | None, what: str) -> tuple[str, SwarmClient]:
    """The server a new database goes on (``server``, else the control plane's own) and its
    client; when the default is absent or unreachable the error says to name one."""
    return await where.reach(plane, server, what)


def row_server(plane: Plane, row: Mapping[str, Any] | None) -> str:
    """The server a database's row records, else (none recorded, or no row) the control
    plane's own."""
    return (row or {}).get("server") or plane.server


async def database_server(plane: Plane, name: str) -> str:
    """The server database ``name`` lives on (the control plane's own when unknown)."""
    return row_server(plane, await plane.db.in_thread(lambda: plane.store.database(name)))


async def database_swarm(plane: Plane, name: str) -> SwarmClient:
    server = await database_server(plane, name)
    return await where.client(plane, server, f"database {name}")


async def volume_swarm(plane: Plane, app: str, env: str) -> SwarmClient:
    """The swarm an app environment's volumes live on: where it was last deployed."""
    server = await where.server_of(plane, app, env)
    return await where.client(plane, server, f"the volumes of {app} ({env})")
