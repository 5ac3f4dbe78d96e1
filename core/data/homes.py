"""Which server a database or an app's volume lives on, and its swarm client.

A managed database lives on the server ``db create --server S`` named (the control plane's
own, ``plane.server``, by default); its row records it, and everything after follows it:
status, attach, backups, verifies, restores, removal. An app's named volume lives where
its environment was last deployed. Reaching a server that is unknown or does not answer
is an error that names the server and what to pass or check instead.
"""

from __future__ import annotations

import asyncio

from core.errors import CoreError
from core.plane import Plane
from core.swarm import SwarmClient


class ServerUnreachable(CoreError):
    """The server a command acts on is unknown or does not answer; the message names it."""


def known(plane: Plane) -> list[str]:
    """Every server name shipbot may drive (blocking): its own engines and those added."""
    added = {row["name"] for row in plane.store.servers()}
    return sorted(set(plane.servers.names) | added)


async def client(plane: Plane, server: str, what: str) -> SwarmClient:
    """``server``'s swarm client for ``what`` (words: "database maindb"); an error naming
    the server, and the servers there are, when it is unknown or unreachable."""
    try:
        return await plane.servers.client(server)
    except CoreError as exc:
        every = await asyncio.to_thread(known, plane)
        names = ", ".join(n for n in every if n != server) or "none added yet"
        raise ServerUnreachable(
            f"{what} is on server {server}, which cannot be reached: {exc} "
            f"(`server check {server}`; other servers: {names})"
        ) from exc


async def for_create(plane: Plane, server: str | None, what: str) -> tuple[str, SwarmClient]:
    """The server a new database goes on (``server``, else the control plane's own) and its
    client; when the default is absent or unreachable the error says to name one."""
    every = await asyncio.to_thread(known, plane)
    if server is not None:
        if server not in every:
            names = ", ".join(every) or "none"
            raise ServerUnreachable(
                f"no server named {server!r} (known: {names}); `server list` shows the ones "
                "added from chat; nothing was changed"
            )
        return server, await client(plane, server, what)
    try:
        return plane.server, await plane.servers.client(plane.server)
    except CoreError as exc:
        others = ", ".join(n for n in every if n != plane.server) or "none added yet"
        raise ServerUnreachable(
            f"{what} would go on the control plane's own server {plane.server}, which cannot "
            f"be reached: {exc}. Name a server with --server S (servers: {others}); "
            "nothing was changed"
        ) from exc


async def database_server(plane: Plane, name: str) -> str:
    """The server database ``name`` lives on (the control plane's own when unknown)."""
    row = await plane.db.database(name)
    return row["server"] if row is not None and row.get("server") else plane.server


async def database_swarm(plane: Plane, name: str) -> SwarmClient:
    server = await database_server(plane, name)
    return await client(plane, server, f"database {name}")


async def volume_server(plane: Plane, app: str, env: str) -> str:
    """The server an app environment's volumes live on: where it was last deployed."""
    return await plane.db.env_server(app, env) or plane.server


async def volume_swarm(plane: Plane, app: str, env: str) -> SwarmClient:
    server = await volume_server(plane, app, env)
    return await client(plane, server, f"the volumes of {app} ({env})")
