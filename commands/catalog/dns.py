"""DNS records for app domains: listed, synced from chat, and synced after each good deploy."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from typing import Any

from commands.catalog.context import Context, env_of
from commands.grammar import arg, command, option
from commands.permissions import DEPLOY, VIEW
from commands.replies import Message, Reply, Result, Table
from core.appspec import AppSpec
from core.config import DnsConfig
from core.deploy.resolve import check_env
from core.edge import cloudflare, dns_servers
from core.edge.dns import Action, DnsError, owner_of, writes
from core.edge.domains import require_grants
from core.edge.grants import DomainError

NOT_CONFIGURED = (
    "DNS is not configured: add a `dns:` section (zone, addresses or target, token_env) "
    "to shipbot.yml"
)


def domains_of(spec: AppSpec) -> list[str]:
    return list(spec.domains)


def dns_config(ctx: Context) -> DnsConfig:
    if ctx.config.dns is None:
        raise DnsError(NOT_CONFIGURED)
    return ctx.config.dns


def summary(actions: list[Action]) -> str:
    counts = {kind: sum(a.kind == kind for a in actions) for kind in ("create", "update")}
    parts = [f"{counts['create']} created", f"{counts['update']} updated"]
    deleted = sum(a.kind == "delete" for a in actions)
    if deleted:
        parts.append(f"{deleted} deleted")
    parts.append(f"{sum(a.kind == 'keep' for a in actions)} unchanged")
    return ", ".join(parts)


@command("dns list", permission=VIEW, examples=("dns list", "dns list hello"))
class DnsList:
    """Show the DNS records shipbot manages, per app and environment."""

    app: str | None = arg("app", "APP", optional=True)

    async def run(self, ctx: Context) -> AsyncIterator[Reply]:
        config = dns_config(ctx)
        rows = []
        for record in await cloudflare.managed(config):
            owner = owner_of(record.comment)
            if owner is None or (self.app is not None and owner[0] != self.app):
                continue
            if not ctx.policy.allows(ctx.user, VIEW, *owner):
                continue
            proxied = "yes" if record.proxied else "no"
            rows.append((*owner, record.name, record.type, record.content, proxied))
        if not rows:
            whose = f"for {self.app} " if self.app else ""
            yield Message(f"shipbot manages no DNS records {whose}in zone {config.zone}")
            return
        yield Table(
            ("app", "env", "name", "type", "content", "proxied"),
            tuple(sorted(rows)),
            title=f"zone {config.zone}",
        )


@command(
    "dns sync",
    permission=DEPLOY,
    changes_state=True,
    approvable=True,
    examples=("dns sync hello", "dns sync hello --env staging"),
)
class DnsSync:
    """Create or update the DNS records of an app's domains (app.yml at its registered ref).

    Records point at the public addresses of the server the environment runs on (`server
    list`; the control plane's own from shipbot.yml's `dns:`), only for domains an admin
    granted the app (`domains APP`); a wildcard or the zone's apex only when that very
    wildcard or apex is granted. A second sync changes nothing.
    """

    app: str = arg("app", "APP")
    env: str | None = option("env", "ENV")
    break_glass: str | None = option("text", "REASON")

    async def run(self, ctx: Context) -> AsyncIterator[Reply]:
        config = dns_config(ctx)
        env = env_of(self)
        app_config = await ctx.engine.config(self.app)
        check_env(app_config, env)
        spec = app_config.for_env(env)
        domains = domains_of(spec)
        if not domains:
            yield Message(f"{self.app} ({env}) has no domains in app.yml: no DNS records to keep")
            return
        await require_grants(ctx.engine.db, self.app, env, domains)
        server, actions = await dns_servers.sync(
            ctx.engine.plane, config, self.app, env, domains, spec.server
        )
        yield Result(
            True,
            f"DNS of {self.app} ({env}) in zone {config.zone}: {summary(actions)}",
            tuple(a.shown for a in writes(actions)),
            {"server": server},
        )


async def after_deploy(ctx: Context, request: Any, result: Result) -> Result:
    """A live deploy's records, synced: the outcome gains one detail line saying what
    changed, or why DNS was not updated. The release stays live either way."""
    spec = ctx.resolved.spec if ctx.resolved is not None else None
    if not result.ok or ctx.config.dns is None or spec is None or not domains_of(spec):
        return result
    env = env_of(request)
    try:
        await require_grants(ctx.engine.db, request.app, env, domains_of(spec))
        _, actions = await dns_servers.sync(
            ctx.engine.plane, ctx.config.dns, request.app, env, domains_of(spec), spec.server
        )
    except (DnsError, DomainError) as exc:
        line = f"DNS not updated: {exc}; `dns sync {request.app}` to try again"
    else:
        changed = writes(actions)
        line = "DNS: " + ("; ".join(a.shown for a in changed) if changed else "records up to date")
    return dataclasses.replace(result, details=(*result.details, line))
