"""The certificate watcher's reader for every server (issue 23): each server's own proxy,
read through that server's engine (its services' domains, its Traefik's log) with the
handshakes made at its address, all at once and each within its own time-out. A server
that cannot be read is reported as away (``Reading.away``) and the others are read as
usual; ``core.watch.certs.step`` names it once per outage.

The servers are asked for every round, so one added or removed while ``serve`` runs is
read, or no longer read, from the next round on.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Callable

from core.errors import CoreError
from core.ownership import owner
from core.plane import Plane
from core.servers import where
from core.watch.certs import DomainFacts, EdgeReader, Reading

SERVER_SECONDS = 30.0  # one server's whole read: engine, log and handshakes
AT_ONCE = 8  # servers read at the same time


def edge_of(plane: Plane, server: str) -> EdgeReader:
    """``server``'s own edge (blocking: reads its address from the store): its engine, its
    proxy's log, handshakes at its address (``edge.address`` for the control plane's own,
    the SSH address's host for a server added from chat)."""
    return EdgeReader(
        lambda: plane.servers.client(server),
        address=where.public_address(plane, server),
        https_port=plane.edge.https_port,
        proxy_service=plane.edge.service,
        owns=owner(plane),
    )


class FleetReader:
    """Reads every server's edge; one that fails or is slow is away, not an error."""

    def __init__(
        self,
        servers: Callable[[], list[str]],
        edge: Callable[[str], EdgeReader],
        *,
        own: str = "",
        timeout: float = SERVER_SECONDS,
    ) -> None:
        self.servers = servers  # the servers to read now (blocking: it reads the store)
        self.edge = edge  # a server's edge reader (blocking)
        self.own = own  # the control plane's own server, whose domains go unnamed
        self.timeout = timeout

    async def read(self) -> Reading:
        names = await asyncio.to_thread(self.servers)
        gate = asyncio.Semaphore(AT_ONCE)

        async def one(name: str) -> list[DomainFacts]:
            async with gate:
                reader = await asyncio.to_thread(self.edge, name)
                return await asyncio.wait_for(reader.facts(), self.timeout)

        results = await asyncio.gather(*(one(n) for n in names), return_exceptions=True)
        facts: list[DomainFacts] = []
        away: dict[str, str] = {}
        for name, got in zip(names, results, strict=True):
            if isinstance(got, TimeoutError):
                away[name] = f"it did not answer within {self.timeout:g} s"
            elif isinstance(got, CoreError):
                away[name] = str(got)
            elif isinstance(got, BaseException):
                raise got
            else:
                facts.extend(dataclasses.replace(f, server=name) for f in got)
        return Reading(facts, away, tuple(names), self.own)
