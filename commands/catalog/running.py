"""What runs, its logs, and changing how it runs (scale, restart)."""

from __future__ import annotations

from collections.abc import AsyncIterator

from commands.catalog.context import Context, relay
from commands.catalog.words import tasks_word
from commands.grammar import UsageError, arg, command, flag, option
from commands.permissions import DEPLOY, VIEW
from commands.replies import Log, Message, Reply, Table
from core.deploy.drift import UNREACHABLE
from core.servers import nodes
from core.servers.where import has_own, servers_in_use

MAX_TAIL = 5000


@command("status", permission=VIEW, examples=("status", "status hello", "status --drift"))
class Status:
    """Show what runs: release, healthy tasks and update state, per app and environment.

    --drift shows where the swarm differs from what shipbot deployed.
    """

    app: str | None = arg("app", "APP", optional=True)
    drift: bool = flag()

    async def run(self, ctx: Context) -> AsyncIterator[Reply]:
        if self.drift:
            async for reply in drift_replies(ctx, self.app):
                yield reply
            return
        services = [
            s
            for s in await ctx.engine.status(self.app)
            if ctx.policy.allows(ctx.user, VIEW, s.app, s.env)
        ]
        plane = ctx.engine.plane
        read = await nodes.read(plane, await servers_in_use(plane))
        down = [
            *(f"⚠️ server {r.server} unreachable: {r.error}" for r in read if r.error),
            *nodes.down_lines(read),
        ]
        if not services:
            yield Message(
                "nothing is deployed yet"
                if self.app is None
                else f"{self.app} is not deployed yet: `deploy {self.app}`"
            )
            for line in down:
                yield Message(line)
            return
        rows = tuple(
            (
                s.app,
                s.env,
                s.release,
                s.unknown or tasks_word(s.running, s.desired, s.healthchecked),
                s.update_state or "",
            )
            for s in services
        )
        yield Table(("app", "env", "release", "tasks", "update"), rows)
        for line in down:
            yield Message(line)
        if self.app is not None and has_own(plane):  # apart, no proxy of its own to ask
            for route in await ctx.engine.routes(self.app):
                if ctx.policy.allows(ctx.user, VIEW, self.app, route.env):
                    cert = f"; certificate: {route.certificate}" if route.certificate else ""
                    yield Message(f"{route.env}: {route.url} → {route.answer}{cert}")


async def drift_replies(ctx: Context, app: str | None) -> AsyncIterator[Reply]:
    everything = await ctx.engine.drift(app)
    away = [d for d in everything if d.kind == UNREACHABLE]
    for server in away:
        yield Message(f"⚠️ drift not checked on {server.detail}")
    found = [
        d
        for d in everything
        if d.kind != UNREACHABLE and ctx.policy.allows(ctx.user, VIEW, d.app, d.env)
    ]
    if not found:
        where = "the servers that answered run" if away else "the swarm runs"
        yield Message(f"no drift: {where} what shipbot deployed")
        return
    rows = tuple((d.app, d.env, d.server, d.kind, d.detail) for d in found)
    yield Table(("app", "env", "server", "drift", "detail"), rows)


@command(
    "logs",
    permission=VIEW,
    examples=("logs hello", "logs hello --tail 200", "logs hello --release 3", "logs hello --all"),
)
class Logs:
    """Show the last lines the live release's running tasks logged, oldest first.

    --release N shows that release's tasks (running or not); --all every task Swarm kept.
    """

    app: str = arg("app", "APP")
    env: str | None = option("env", "ENV")
    tail: int = option("count", "N", default=50)
    release: int | None = option("release", "N")
    all: bool = flag()

    async def run(self, ctx: Context) -> AsyncIterator[Reply]:
        if not 1 <= self.tail <= MAX_TAIL:
            raise UsageError(f"logs: --tail must be between 1 and {MAX_TAIL}", self.spec.usage)
        if self.all and self.release is not None:
            raise UsageError("logs: give --release or --all, not both", self.spec.usage)
        lines = await ctx.engine.logs(
            self.app, env=self.env, tail=self.tail, release=self.release, everything=self.all
        )
        if not lines:
            yield Message(f"{self.app} has logged nothing yet")
        for line in lines:
            yield Log(line)


@command("scale", permission=DEPLOY, locks=True, approvable=True, examples=("scale hello 3",))
class Scale:
    """Run N tasks of an app (0 stops it; the next deploy applies app.yml's count again)."""

    app: str = arg("app", "APP")
    replicas: int = arg("count", "N")
    env: str | None = option("env", "ENV")
    break_glass: str | None = option("text", "REASON")

    def run(self, ctx: Context) -> AsyncIterator[Reply]:
        return relay(ctx.engine.scale(self.app, self.replicas, user=ctx.user, env=self.env))


@command("restart", permission=DEPLOY, locks=True, approvable=True, examples=("restart hello",))
class Restart:
    """Replace every task of an app, new ones first."""

    app: str = arg("app", "APP")
    env: str | None = option("env", "ENV")
    break_glass: str | None = option("text", "REASON")

    def run(self, ctx: Context) -> AsyncIterator[Reply]:
        return relay(ctx.engine.restart(self.app, user=ctx.user, env=self.env))
