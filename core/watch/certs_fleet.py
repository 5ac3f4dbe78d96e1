"""The certificate watcher's reader for every server (issue 23): each server's own proxy,
read through that server's engine (its services' domains, its Traefik's log) with the
handshakes made at its public addresses (``where.public_addresses``: those recorded for it,
else shipbot.yml's ``dns.servers``, then its SSH host), each with the app's domain as SNI,
all at once and each within its own time-out. A server
that cannot be read is reported as away (``Reading.away``) and the others are read as
usual; ``core.watch.certs.step`` names it once per outage.

The servers are asked for every round, so one added or removed while ``serve`` runs is
read, or no longer read, from the next round on.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Callable, Mapping

from core.errors import CoreError
from core.ownership import owner
from core.plane import Plane
from core.servers import where
from core.watch.certs import DomainFacts, EdgeReader, Reading

SERVER_SECONDS = 30.0  # one server's whole read: engine, log and handshakes
AT_ONCE = 8  # servers read at the same time


def edge_of(plane: Plane, server: str, public: Mapping[str, list[str]] = where.EMPTY) -> EdgeReader:
    """``server``'s own edge (blocking: reads its addresses from the store): its engine, its
    proxy's log, handshakes at its public addresses (``edge.address`` for the control
    plane's own; for a server added from chat those recorded, else ``public``'s entry
    (shipbot.yml's ``dns.servers``), then its SSH address's host)."""
    return EdgeReader(
        lambda: plane.servers.client(server),
        addresses=where.public_addresses(plane, server, public),
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
