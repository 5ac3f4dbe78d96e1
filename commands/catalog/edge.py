"""The edge: Traefik in front of the swarm, set up and read through the chat."""

from __future__ import annotations

from collections.abc import AsyncIterator

from commands.catalog.context import Context, relay
from commands.grammar import command
from commands.permissions import ADMIN, VIEW
from commands.replies import Message, Reply, Table


@command("proxy setup", permission=ADMIN, changes_state=True, examples=("proxy setup",))
class ProxySetup:
    """Create or upgrade the Traefik proxy (shipbot.yml's `edge:`) and wait until it runs.

    Nothing changes when it already runs as configured. An upgrade is stop-first (its
    ports are published on the host), so the edge pauses for a few seconds.
    """

    def run(self, ctx: Context) -> AsyncIterator[Reply]:
        return relay(ctx.engine.proxy_setup())


@command("proxy status", permission=VIEW, examples=("proxy status",))
class ProxyStatus:
    """Show the Traefik proxy: image, published ports, tasks and Traefik's version."""

    async def run(self, ctx: Context) -> AsyncIterator[Reply]:
        proxy = await ctx.engine.proxy_status()
        if proxy is None:
            yield Message("no proxy runs yet: an admin sets it up with `proxy setup`")
            return
        tasks = f"{proxy.running}/{proxy.desired} running"
        if proxy.state:
            tasks += f" (last task {proxy.state})"
        row = (proxy.service, proxy.image, proxy.ports, tasks, proxy.version)
        yield Table(("service", "image", "ports", "tasks", "version"), (row,))
