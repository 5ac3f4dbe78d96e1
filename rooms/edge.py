"""The edge room: the Traefik proxy, domains, DNS records and certificates."""

from __future__ import annotations

import logging
from collections.abc import Iterable

from core.config import DnsConfig, EdgeConfig
from core.scheduler.clocked import Every
from core.store.schema import edge as schema_edge
from core.store.schema import versions
from rooms.capability import Capability, Periodic, Running, Schedule

log = logging.getLogger("shipbot.serve")


def periodic(root: Running) -> Iterable[Periodic]:
    """Every server's certificates, checked at start and every ``edge.acme.watch_seconds``."""
    from commands.catalog import certs  # the family loads only where it runs: serve

    watcher = certs.watch(root.plane, root.notifier, clock=root.plane.clock, dns=root.config.dns)

    async def check() -> None:
        for text in await certs.watch_round(watcher):
            log.info("certs: %s", text)

    yield Schedule("edge/certs", Every(root.plane.edge.acme.watch_seconds), check)


ROOM = Capability(
    name="edge",
    sections={"edge": EdgeConfig, "dns": DnsConfig},
    tables=("cert_watch", "domain_grants"),
    migrations=versions(schema_edge),
    commands=(
        "certs",
        "dns list",
        "dns sync",
        "domain grant",
        "domain revoke",
        "domains",
        "proxy setup",
        "proxy status",
    ),
    periodic=periodic,
)
