"""Certificates: `certs` shows what the edge serves per app domain; ``watch`` builds the
watcher that ``shipbot serve`` runs, posting to the ``certs`` channels."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import AsyncIterator

from commands.catalog.context import Context
from commands.grammar import arg, command
from commands.notify import Notifier
from commands.permissions import VIEW
from commands.replies import Message, Reply, Table
from core.clock import Clock
from core.errors import CoreError
from core.plane import Plane
from core.watch.certs import CertWatch, DomainFacts, EdgeReader, Post, standing_error

log = logging.getLogger("shipbot.certs")
COLUMNS = ("domain", "app", "env", "issuer", "not after", "days left", "note")


def cert_rows(facts: list[DomainFacts], now: dt.datetime) -> tuple[tuple[str, ...], ...]:
    """One row per domain; a domain without its own certificate says why."""
    rows = []
    for item in facts:
        cert, error = item.cert, standing_error(item)
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
                )
            )
            continue
        if item.served is None:
            note = "the edge did not answer (is the proxy running? `proxy status`)"
        elif error:
            note = f"not issued: {error}"
        else:
            note = f"not issued yet (the edge serves {item.served.subject!r})"
        rows.append((item.domain, item.app, item.env, "", "", "", note))
    return tuple(rows)


@command("certs", permission=VIEW, examples=("certs", "certs api"))
class Certs:
    """Show the certificate the edge serves for each app domain: issuer, not-after, days left.

    Read by a TLS handshake with each domain's name against the proxy, as a browser would.
    """

    app: str | None = arg("app", "APP", optional=True)

    async def run(self, ctx: Context) -> AsyncIterator[Reply]:
        facts = [
            f
            for f in await EdgeReader.of(ctx.engine.plane).facts()
            if (self.app is None or f.app == self.app)
            and ctx.policy.allows(ctx.user, VIEW, f.app, f.env)
        ]
        if not facts:
            yield Message(
                "no app has a domain yet: add `domains: [...]` to app.yml and deploy"
                if self.app is None
                else f"{self.app} has no domain: add `domains: [...]` to its app.yml and deploy"
            )
            return
        yield Table(COLUMNS, cert_rows(facts, ctx.engine.clock.now()))


def watch(plane: Plane, notifier: Notifier, clock: Clock | None = None) -> CertWatch:
    """The watcher ``shipbot serve`` runs every ``edge.acme.watch_seconds``."""

    def publish(post: Post) -> None:
        notifier.publish("certs", post.app, post.env, Message(post.text))

    return CertWatch(
        EdgeReader.of(plane),
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
