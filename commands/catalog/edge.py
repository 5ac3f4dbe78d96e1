"""The edge: Traefik in front of each server's swarm, set up and read through the chat."""

from __future__ import annotations

from collections.abc import AsyncIterator

from commands.catalog.context import Context, relay
from commands.grammar import command, option
from commands.permissions import ADMIN, VIEW
from commands.replies import Message, Reply, Table


@command(
    "proxy setup",
    permission=ADMIN,
    changes_state=True,
    examples=("proxy setup", "proxy setup --server eu-1"),
)
class ProxySetup:
    """Create or upgrade the Traefik proxy (shipbot.yml's `edge:`) and wait until it runs.

    Each server runs its own: --server names which (the control plane's own by default).
    Nothing changes when it already runs as configured. An upgrade is stop-first (its
    ports are published on the host), so the edge pauses for a few seconds.
    """

    server: str | None = option("app", "SERVER")

    def run(self, ctx: Context) -> AsyncIterator[Reply]:
        return relay(ctx.engine.proxy_setup(self.server))


@command("proxy status", permission=VIEW, examples=("proxy status", "proxy status --server eu-1"))
class ProxyStatus:
    """Show a server's Traefik proxy (the control plane's own unless --server names
    another): image, published ports, tasks and Traefik's version."""

    server: str | None = option("app", "SERVER")

    async def run(self, ctx: Context) -> AsyncIterator[Reply]:
        proxy = await ctx.engine.proxy_status(self.server)
        if proxy is None:
            there = f" on server {self.server}" if self.server else ""
            setup = f"proxy setup --server {self.server}" if self.server else "proxy setup"
            yield Message(f"no proxy runs{there} yet: an admin sets it up with `{setup}`")
            return
        tasks = f"{proxy.running}/{proxy.desired} running"
        if proxy.state:
            tasks += f" (last task {proxy.state})"
        row = (proxy.service, proxy.image, proxy.ports, tasks, proxy.version, proxy.server)
        yield Table(("service", "image", "ports", "tasks", "version", "server"), (row,))
