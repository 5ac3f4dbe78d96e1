"""The nodes of the swarms shipbot uses, as each swarm's manager reports them: ``status``
and ``server list`` name a node that is down, so an outage is seen without
``server check``. Each swarm is read at once and on its own: one that cannot be read says
so in its rows and does not hide the others."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from core.errors import CoreError
from core.plane import Plane
from core.swarm import nodes as swarm_nodes


@dataclass(frozen=True)
class SwarmNodes:
    """``server``'s swarm: its nodes, or why they could not be read."""

    server: str
    nodes: tuple[dict[str, Any], ...] = ()
    error: str | None = None


async def read(plane: Plane, servers: Iterable[str]) -> list[SwarmNodes]:
    async def one(server: str) -> SwarmNodes:
        try:
            swarm = await plane.servers.client(server)
            return SwarmNodes(server, tuple(await asyncio.to_thread(swarm.nodes)))
        except CoreError as exc:
            return SwarmNodes(server, error=str(exc))

    return list(await asyncio.gather(*(one(s) for s in servers)))


def state(node: dict[str, Any]) -> str:
    """``ready``, ``down``, ``unknown``…, with the availability when it is not active."""
    words = (node.get("Status") or {}).get("State", "unknown")
    availability = (node.get("Spec") or {}).get("Availability", "active")
    return words if availability == "active" else f"{words}, {availability}"


def down_lines(found: Sequence[SwarmNodes]) -> list[str]:
    """One line per node Swarm does not report Ready, naming its server's swarm."""
    lines = []
    for swarm in found:
        for node in sorted(swarm.nodes, key=swarm_nodes.hostname):
            if (node.get("Status") or {}).get("State") != "ready":
                name = swarm_nodes.hostname(node)
                lines.append(
                    f"⚠️ node {name} of server {swarm.server} is {state(node)}: "
                    "Swarm runs no task there until it is back"
                )
    return lines


def node_of(nodes: Iterable[dict[str, Any]], host: str) -> dict[str, Any] | None:
    """The swarm node a server's address names (its advertised address; a host name is
    resolved), or None."""
    nodes = list(nodes)
    for candidate in (host, *sorted(_addresses(host) - {host})):
        for node in nodes:
            if swarm_nodes.address(node) == candidate:
                return node
    return None


def _addresses(host: str) -> set[str]:
    try:
        return {str(info[4][0]) for info in socket.getaddrinfo(host, None)}
    except OSError:
        return set()
