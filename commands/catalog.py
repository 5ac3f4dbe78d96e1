"""Every chat command: its arguments, permission, help and what it does, in one place."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from commands.grammar import REGISTRY, UsageError, arg, command, option
from commands.replies import Log, Message, Reply, Result, Step, Table
from core.engine import Engine
from core.events import Event, LogLine, Outcome, Progress

VIEW = "view"
DEPLOY = "deploy"
ADMIN = "admin"
PUBLIC = "public"


@dataclass(frozen=True)
class Context:
    engine: Engine
    user: str
    channel: str
    platform: str


def _when(ts: float) -> str:
    return dt.datetime.fromtimestamp(ts, dt.UTC).strftime("%m-%d %H:%M:%S")


async def _relay(events: AsyncIterator[Event]) -> AsyncIterator[Reply]:
    async for event in events:
        if isinstance(event, Progress):
            yield Step(event.text)
        elif isinstance(event, LogLine):
            yield Log(event.text)
        elif isinstance(event, Outcome):
            yield Result(
                event.ok,
                event.title,
                tuple(event.details),
                dict(event.fields),
                tuple(event.log_tail),
            )


@command(
    "apps add",
    permission=ADMIN,
    changes_state=True,
    examples=(
        "apps add hello --path examples/hello",
        "apps add api --git https://git.example.com/team/api.git --ref main",
    ),
)
class AppsAdd:
    """Register an app from a folder or a git repository holding its app.yml.

    Give exactly one of --path (a folder on the control-plane host) or --git (a URL that
    is cloned; --ref picks the branch, tag or commit, later deploys may name another).
    """

    name: str = arg("app", "NAME")
    path: str | None = option("text", "DIR")
    git: str | None = option("text", "URL")
    ref: str | None = option("ref", "REF")

    async def run(self, ctx: Context) -> AsyncIterator[Reply]:
        if (self.path is None) == (self.git is None):
            raise UsageError("apps add: give exactly one of --path or --git", self.spec.usage)
        if self.ref is not None and self.git is None:
            raise UsageError("apps add: --ref goes with --git", self.spec.usage)
        if self.git:
            yield Step(f"cloning {self.git}")
        app, config = await ctx.engine.add_app(
            self.name, user=ctx.user, path=self.path, git=self.git, ref=self.ref
        )
        envs = ", ".join(["production", *config.environments])
        yield Result(
            True,
            f"registered {app.name}",
            (f"environments: {envs}",),
            {"source": app.source, "kind": app.source_kind},
        )


@command("apps list", permission=VIEW, examples=("apps list",))
class AppsList:
    """List the registered apps and where they come from."""

    async def run(self, ctx: Context) -> AsyncIterator[Reply]:
        apps = ctx.engine.store.list_apps()
        if not apps:
            yield Message("no apps yet: register one with `apps add NAME --path DIR`")
            return
        rows = tuple((a.name, a.source_kind, a.source, a.ref or "", a.created_by) for a in apps)
        yield Table(("app", "kind", "source", "ref", "added by"), rows)


@command(
    "deploy",
    permission=DEPLOY,
    changes_state=True,
    examples=("deploy hello", "deploy hello --env staging", "deploy api v1.4.2 --env production"),
)
class Deploy:
    """Build (or pull) and roll out an app; a failed health check rolls it back.

    REF is a branch, tag or commit for git apps, or the image tag for image apps.
    """

    app: str = arg("app", "APP")
    ref: str | None = arg("ref", "REF", optional=True)
    env: str | None = option("env", "ENV")

    async def run(self, ctx: Context) -> AsyncIterator[Reply]:
        async for reply in _relay(
            ctx.engine.deploy(self.app, user=ctx.user, env=self.env, ref=self.ref)
        ):
            yield reply


@command(
    "rollback",
    permission=DEPLOY,
    changes_state=True,
    examples=("rollback hello", "rollback hello 3", "rollback hello --env staging"),
)
class Rollback:
    """Go back to an earlier release (the one before the live one by default)."""

    app: str = arg("app", "APP")
    release: int | None = arg("release", "RELEASE", optional=True)
    env: str | None = option("env", "ENV")

    async def run(self, ctx: Context) -> AsyncIterator[Reply]:
        async for reply in _relay(
            ctx.engine.rollback(self.app, user=ctx.user, env=self.env, number=self.release)
        ):
            yield reply


@command("releases", permission=VIEW, examples=("releases hello",))
class Releases:
    """List an app's last releases: number, status, who deployed it and when."""

    app: str = arg("app", "APP")
    env: str | None = option("env", "ENV")

    async def run(self, ctx: Context) -> AsyncIterator[Reply]:
        releases = ctx.engine.releases(self.app, self.env)
        if not releases:
            yield Message(f"{self.app} has no releases yet: `deploy {self.app}`")
            return
        rows = tuple(
            (
                str(r.number),
                r.status,
                r.deployed_by,
                _when(r.created_at),
                (r.source_ref or "")[:12],
                (r.message or "")[:60],
            )
            for r in releases
        )
        yield Table(
            ("release", "status", "by", "when", "ref", "note"),
            rows,
            title=f"{self.app} ({releases[0].env})",
        )


@command("status", permission=VIEW, examples=("status", "status hello"))
class Status:
    """Show what runs: release, healthy tasks and update state, per app and environment."""

    app: str | None = arg("app", "APP", optional=True)

    async def run(self, ctx: Context) -> AsyncIterator[Reply]:
        services = await ctx.engine.status(self.app)
        if not services:
            yield Message(
                "nothing is deployed yet"
                if self.app is None
                else f"{self.app} is not deployed yet: `deploy {self.app}`"
            )
            return
        rows = tuple(
            (
                s.app,
                s.env,
                s.release,
                f"{s.running}/{s.desired} {'healthy' if s.healthchecked else 'running'}",
                s.update_state or "",
            )
            for s in services
        )
        yield Table(("app", "env", "release", "tasks", "update"), rows)


@command("logs", permission=VIEW, examples=("logs hello", "logs hello --tail 200"))
class Logs:
    """Show the last lines the app's containers logged."""

    app: str = arg("app", "APP")
    env: str | None = option("env", "ENV")
    tail: int = option("count", "N", default=50)

    async def run(self, ctx: Context) -> AsyncIterator[Reply]:
        if not 1 <= self.tail <= 5000:
            raise UsageError("logs: --tail must be between 1 and 5000", self.spec.usage)
        lines = await ctx.engine.logs(self.app, env=self.env, tail=self.tail)
        if not lines:
            yield Message(f"{self.app} has logged nothing yet")
        for line in lines:
            yield Log(line)


@command("scale", permission=DEPLOY, changes_state=True, examples=("scale hello 3",))
class Scale:
    """Set the number of replicas of an app until its next deploy."""

    app: str = arg("app", "APP")
    replicas: int = arg("count", "N")
    env: str | None = option("env", "ENV")

    async def run(self, ctx: Context) -> AsyncIterator[Reply]:
        async for reply in _relay(
            ctx.engine.scale(self.app, self.replicas, user=ctx.user, env=self.env)
        ):
            yield reply


@command("restart", permission=DEPLOY, changes_state=True, examples=("restart hello",))
class Restart:
    """Replace every task of an app, one at a time, new one first."""

    app: str = arg("app", "APP")
    env: str | None = option("env", "ENV")

    async def run(self, ctx: Context) -> AsyncIterator[Reply]:
        async for reply in _relay(ctx.engine.restart(self.app, user=ctx.user, env=self.env)):
            yield reply


@command("help", permission=PUBLIC, examples=("help", "help deploy", "help apps add"))
class Help:
    """Show the commands, or the usage and examples of one."""

    topic: str | None = arg("text", "COMMAND", optional=True)
    sub: str | None = arg("text", "SUBCOMMAND", optional=True)

    async def run(self, ctx: Context) -> AsyncIterator[Reply]:
        if self.topic is None:
            rows = tuple((spec.usage, spec.summary) for spec in REGISTRY.values())
            yield Table(("command", "what it does"), rows, title="shipbot commands")
            return
        name = " ".join(part for part in (self.topic, self.sub) if part)
        spec = REGISTRY.get(name)
        if spec is None:
            raise UsageError(f"help: no command {name!r}: type `help` for the list")
        lines = [f"usage: {spec.usage}", "", spec.help]
        if spec.examples:
            lines += ["", "examples:", *(f"  {example}" for example in spec.examples)]
        yield Message("\n".join(lines))


def describe(request: Any) -> tuple[str | None, str | None]:
    """The app and environment a request is about, for the audit log."""
    return getattr(request, "app", None) or getattr(request, "name", None), getattr(
        request, "env", None
    )
