"""Which server's addresses an app environment's DNS records point at, and re-pointing the
records of every environment on a server when its addresses change (issue 23).

An environment's server is where its last deploy went (``env_servers``), else app.yml's
``server:``, else the control plane's own. Its targets come from ``core.edge.dns.targets``:
the addresses an admin recorded from chat, then shipbot.yml's ``dns.servers``, then (the
control plane's own server only) ``dns.addresses`` or ``dns.target``.
"""

from __future__ import annotations

from dataclasses import dataclass

from core.config import DnsConfig
from core.edge import cloudflare
from core.edge.dns import Action, DnsError, Target, targets
from core.plane import Plane
from core.servers.where import has_own


async def env_server(plane: Plane, app: str, env: str, declared: str | None = None) -> str:
    """The server app/env runs on: its last deploy's, else ``declared`` (app.yml's
    ``server:``), else the control plane's own."""
    recorded = await plane.db.in_thread(lambda: plane.store.env_server(app, env))
    return recorded or declared or plane.server


async def targets_of(plane: Plane, config: DnsConfig, server: str) -> list[Target]:
    """What records of an environment on ``server`` point at, or a ``DnsError`` naming the
    server and what to do."""
    recorded = await plane.db.in_thread(lambda: plane.store.server_addresses(server))
    return targets(config, server, plane.server if has_own(plane) else None, recorded)


async def sync(
    plane: Plane,
    config: DnsConfig,
    app: str,
    env: str,
    domains: list[str],
    declared: str | None = None,
) -> tuple[str, list[Action]]:
    """The records of ``domains``, pointing at app/env's server; returns that server and
    every action."""
    server = await env_server(plane, app, env, declared)
    to = await targets_of(plane, config, server)
    return server, await cloudflare.sync(config, app, env, domains, to)


@dataclass(frozen=True)
class Repointed:
    """One environment's records after its server's addresses changed."""

    app: str
    env: str
    actions: tuple[Action, ...] = ()
    error: str = ""


async def repoint_server(plane: Plane, config: DnsConfig, server: str) -> list[Repointed]:
    """The records of every environment that runs on ``server``, pointed at its addresses
    now. One environment's failure is its own line; the others still move."""
    envs = await plane.db.in_thread(lambda: plane.store.envs_on(server))
    if not envs:
        return []
    to = await targets_of(plane, config, server)
    out = []
    for app, env in envs:
        try:
            actions = await cloudflare.repoint(config, app, env, to)
        except DnsError as exc:
            out.append(Repointed(app, env, error=str(exc)))
        else:
            out.append(Repointed(app, env, tuple(actions)))
    return out
