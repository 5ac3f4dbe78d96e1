"""Certificates: `certs` shows what the edge serves per app domain; ``watch`` builds the
watcher that ``shipbot serve`` runs, posting to the ``certs`` channels."""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections.abc import AsyncIterator

from commands.catalog.context import Context
from commands.grammar import arg, command, option
from commands.notify import Notifier
from commands.permissions import VIEW
from commands.replies import Message, Reply, Table
from commands.watching import watched_servers
from core.clock import Clock
from core.config import DnsConfig
from core.errors import CoreError
from core.plane import Plane
from core.servers import where
from core.watch.certs import CertWatch, DomainFacts, EdgeReader, Post, Reading, standing_error
from core.watch.certs_fleet import FleetReader, edge_of

log = logging.getLogger("shipbot.certs")
COLUMNS = ("domain", "app", "env", "issuer", "not after", "days left", "note")


def cert_rows(
    facts: list[DomainFacts], now: dt.datetime, servers: bool = False
) -> tuple[tuple[str, ...], ...]:
    """One row per domain; a domain without its own certificate says why. ``servers``: each
    row ends with the server whose proxy serves it."""
    rows = []
    for item in facts:
        cert, error = item.cert, standing_error(item)
        where_ = (item.server,) if servers else ()
        if cert is not None:
            until = cert.not_after.strftime("%Y-%m-%d %H:%M UTC")
            note = f"renewal failed: {error}" if error else ""
            rows.append(
                (
                    item.domain,
                    item.app,
                    item.env,
                    cert.issuer,
                    until,
                    str(cert.days_left(now)),
                    note,
                    *where_,
                )
            )
            continue
        if item.served is None:
            note = "the edge did not answer (is the proxy running? `proxy status`)"
        elif error:
            note = f"not issued: {error}"
        else:
            note = f"not issued yet (the edge serves {item.served.subject!r})"
        rows.append((item.domain, item.app, item.env, "", "", "", note, *where_))
    return tuple(rows)


def public(dns: DnsConfig | None) -> dict[str, list[str]]:
    """shipbot.yml's ``dns.servers``: each server's public addresses, where none is recorded."""
    return dict(dns.servers) if dns is not None else {}


def fleet(plane: Plane, dns: DnsConfig | None = None) -> FleetReader:
    """Every server's own proxy, each through its own engine (the watcher reads the same)."""
    own = plane.server if where.has_own(plane) else ""
    addresses = public(dns)
    return FleetReader(
        lambda: watched_servers(plane), lambda name: edge_of(plane, name, addresses), own=own
    )


@command("certs", permission=VIEW, examples=("certs", "certs api", "certs --server eu-1"))
class Certs:
    """Show the certificate the edge serves for each app domain: issuer, not-after, days left.

    Read by a TLS handshake with each domain's name against the proxy, as a browser would,
    and from that proxy's log for ACME outcomes. Each server runs its own proxy: without
    --server every server's is read (one that does not answer is named), --server reads one.
    """

    app: str | None = arg("app", "APP", optional=True)
    server: str | None = option("app", "SERVER")

    async def _read(self, plane: Plane, dns: DnsConfig | None) -> Reading:
        if self.server is None:
            return await fleet(plane, dns).read()
        missing = await where.unknown(plane, self.server)
        if missing is not None:
            raise missing
        addresses = await asyncio.to_thread(where.public_addresses, plane, self.server, public(dns))
        return Reading(await EdgeReader.of(plane, self.server, addresses).facts())

    async def run(self, ctx: Context) -> AsyncIterator[Reply]:
        reading = await self._read(ctx.engine.plane, ctx.config.dns)
        facts = [
            f
            for f in reading.facts
            if (self.app is None or f.app == self.app)
            and ctx.policy.allows(ctx.user, VIEW, f.app, f.env)
        ]
        for name, why in sorted(reading.away.items()):
            yield Message(f"⚠️ certificates not read on server {name}: {why}")
        if reading.away and not reading.facts:
            return
        if not facts:
            there = f" on server {self.server}" if self.server else ""
            yield Message(
                f"no app has a domain{there} yet: add `domains: [...]` to app.yml and deploy"
                if self.app is None
                else f"{self.app} has no domain{there}: add `domains: [...]` to its app.yml "
                "and deploy"
            )
            return
        several = len(reading.servers or ()) > 1
        columns = (*COLUMNS, "server") if several else COLUMNS
        yield Table(columns, cert_rows(facts, ctx.engine.clock.now(), several))


def watch(
    plane: Plane, notifier: Notifier, clock: Clock | None = None, dns: DnsConfig | None = None
) -> CertWatch:
    """The watcher ``shipbot serve`` runs every ``edge.acme.watch_seconds``: every server's
    own proxy (those added while it runs too), each through its own engine and at its
    public addresses (``dns``: shipbot.yml's, for its ``servers``)."""

    def publish(post: Post) -> None:
        notifier.publish("certs", post.app or None, post.env or None, Message(post.text))

    return CertWatch(
        fleet(plane, dns),
        plane.store,
        publish,
        alert_days=plane.edge.acme.alert_days,
        clock=clock or plane.clock,
    )


async def watch_round(watcher: CertWatch) -> list[str]:
    """One check; what it published. An unreachable engine is logged, and the next round
    tries again."""
    try:
        return [post.text for post in await watcher.check()]
    except CoreError as exc:
        log.warning("certificate check failed: %s", exc)
        return []
