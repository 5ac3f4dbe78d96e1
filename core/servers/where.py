"""Which server an app environment runs on: where its last deploy went (app.yml's
``server:``), else the control plane's own. Rollback, scale, restart, logs and status
follow it, so they act where the service is.

``reach`` gives a named server's swarm client, or an error that names the server and the
ones there are when it is unknown or does not answer (``--server S`` options use it).

A control plane apart (shipbot.yml ``local: false``) has no server of its own: what names
no server and has none recorded is told which servers it may name.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping

from core.errors import CoreError
from core.plane import Plane
from core.servers.errors import ServerUnreachable
from core.servers.urls import parse_url
from core.swarm import SwarmClient
from core.swarm.servers import LOCAL

EMPTY: Mapping[str, list[str]] = {}


async def server_of(plane: Plane, app: str, env: str) -> str:
    return await plane.db.in_thread(lambda: plane.store.env_server(app, env)) or plane.server


def has_own(plane: Plane) -> bool:
    """Whether the control plane's own server exists (it is absent when shipbot runs apart)."""
    return plane.server != LOCAL or plane.servers.has_local


async def servers_in_use(plane: Plane) -> list[str]:
    """The control plane's own server first (when it has one), then every other one some app
    was deployed to."""
    others = sorted(await plane.db.in_thread(lambda: plane.store.env_servers()) - {plane.server})
    return [plane.server, *others] if has_own(plane) else others


def known(plane: Plane) -> list[str]:
    """Every server name shipbot may drive (blocking): its own engines and those added."""
    added = {row["name"] for row in plane.store.servers()}
    return sorted(set(plane.servers.names) | added)


async def unknown(plane: Plane, server: str) -> ServerUnreachable | None:
    """The error for a ``--server`` that names no server; None when it names one."""
    every = await asyncio.to_thread(known, plane)
    if server in every:
        return None
    return ServerUnreachable(
        f"no server named {server!r} (known: {', '.join(every) or 'none'}); `server list` "
        "shows the ones added from chat; nothing was changed"
    )


async def client(plane: Plane, server: str, what: str) -> SwarmClient:
    """``server``'s swarm client for ``what`` (words: "database maindb"); an error naming
    the server, and the servers there are, when it does not answer."""
    try:
        return await plane.servers.client(server)
    except CoreError as exc:
        every = await asyncio.to_thread(known, plane)
        names = ", ".join(n for n in every if n != server) or "none added yet"
        check = f"`server check {server}`"
        said = check in str(exc)  # an SSH failure's words name it already
        raise ServerUnreachable(
            f"{what} is on server {server}, which cannot be reached: {exc} "
            f"({'' if said else check + '; '}other servers: {names})"
        ) from exc


async def reach(plane: Plane, server: str | None, what: str) -> tuple[str, SwarmClient]:
    """The server a command names (the control plane's own when None) and its client; an
    unknown name, or an unreachable default, says which server to name instead."""
    if server is not None:
        missing = await unknown(plane, server)
        if missing is not None:
            raise missing
        return server, await client(plane, server, what)
    if not has_own(plane):  # shipbot runs apart: its error already says which server to name
        return plane.server, await plane.servers.client(plane.server)
    try:
        return plane.server, await plane.servers.client(plane.server)
    except CoreError as exc:
        every = await asyncio.to_thread(known, plane)
        others = ", ".join(n for n in every if n != plane.server) or "none added yet"
        raise ServerUnreachable(
            f"{what} would be on the control plane's own server {plane.server}, which cannot "
            f"be reached: {exc}. Name a server with --server S (servers: {others}); "
            "nothing was changed"
        ) from exc


def public_addresses(
    plane: Plane, server: str, servers: Mapping[str, list[str]] = EMPTY
) -> list[str]:
    """Where ``server``'s proxy answers from outside, in the order to try (blocking): the
    control plane's own at shipbot.yml's ``edge.address``; a server added from chat at the
    public addresses recorded for it (``server add --address``, ``server address S A…``),
    else at those ``servers`` (shipbot.yml's ``dns.servers``) lists for it, and last at its
    SSH address's host (all there is when none is recorded, and the way left when none
    answers)."""
    row = plane.store.server(server) if server != plane.server else None
    if row is None:
        return [plane.edge.address]
    public = plane.store.server_addresses(server) or servers.get(server, [])
    return list(dict.fromkeys([*public, parse_url(row["url"]).host]))


def public_address(plane: Plane, server: str) -> str:
    """The first of ``public_addresses`` (blocking): where to tell an admin the proxy answers."""
    return public_addresses(plane, server)[0]
