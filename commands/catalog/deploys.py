"""Deploying, rolling back, and the releases behind them."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from commands.catalog.context import Context, env_of, relay
from commands.catalog.dns import after_deploy
from commands.grammar import arg, command, flag, option
from commands.permissions import DEPLOY, VIEW
from commands.replies import Message, Reply, Result, Table, when
from commands.watching import alert_failed_rollback, guard_deploy
from core.config.parts import DEFAULT_ENV
from core.deploy.resolve import check_env
from core.errors import SourceError


@command(
    "deploy",
    permission=DEPLOY,
    locks=True,
    approvable=True,
    resolves=True,
    examples=(
        "deploy hello",
        "deploy hello --env staging",
        "deploy api v1.4.2 --env production",
        "deploy hello --dry-run",
        "deploy api --image registry.example.com/team/api:sha-abc --env staging",
    ),
)
class Deploy:
    """Build (or pull) and roll out an app; a failed health check rolls it back.

    REF is a branch, tag or commit for git apps, or the image tag for image apps.
    --image runs an image CI pushed to a registry (by tag or @sha256: digest) instead of a
    build; it is pinned to the digest the registry serves, and pulled with the app's login.
    --dry-run shows what would change (image, replicas, env keys, labels) and changes nothing.
    """

    app: str = arg("app", "APP")
    ref: str | None = arg("ref", "REF", optional=True)
    env: str | None = option("env", "ENV")
    dry_run: bool = flag()
    break_glass: str | None = option("text", "REASON")
    image: str | None = option("text", "IMAGE")

    @property
    def changes(self) -> bool:
        return not self.dry_run

    def run(self, ctx: Context) -> AsyncIterator[Reply]:
        assert ctx.resolved is not None
        if self.dry_run:
            return self._plan(ctx)
        return self._deploy(ctx)

    async def _deploy(self, ctx: Context) -> AsyncIterator[Reply]:
        assert ctx.resolved is not None
        events = ctx.engine.deploy(ctx.resolved, user=ctx.user, approved_by=ctx.approved_by)
        async with contextlib.aclosing(relay(events)) as replies:
            async for reply in replies:
                if isinstance(reply, Result):  # guarded, and its domains get their records
                    reply = await asyncio.to_thread(guarded, ctx, reply)
                    reply = await after_deploy(ctx, self, reply)
                yield reply

    async def _plan(self, ctx: Context) -> AsyncIterator[Reply]:
        assert ctx.resolved is not None
        lines = await ctx.engine.plan(ctx.resolved)
        yield Message(
            f"dry run of deploy {self.app} ({env_of(self)}): {lines[0]}\n"
            + "\n".join(f"  {line}" for line in lines[1:])
        )


@command(
    "rollback",
    permission=DEPLOY,
    locks=True,
    approvable=True,
    examples=("rollback hello", "rollback hello 3", "rollback hello --env staging"),
)
class Rollback:
    """Go back to an earlier release (the one before the live one by default)."""

    app: str = arg("app", "APP")
    release: int | None = arg("release", "RELEASE", optional=True)
    env: str | None = option("env", "ENV")
    break_glass: str | None = option("text", "REASON")

    def run(self, ctx: Context) -> AsyncIterator[Reply]:
        return relay(
            ctx.engine.rollback(
                self.app,
                user=ctx.user,
                env=self.env,
                number=self.release,
                approved_by=ctx.approved_by,
            )
        )


def guarded(ctx: Context, result: Result) -> Result:
    """A live release is watched for ``alerts.guard_seconds`` (commands/watching.py); a
    failed rollback opens an alert."""
    plane = ctx.engine.plane
    notifier = ctx.publisher()
    alert_failed_rollback(plane, notifier, result)
    return guard_deploy(
        plane, ctx.config, notifier, result, platform=ctx.platform, channel=ctx.channel
    )


def short_ref(ref: str | None) -> str:
    """A git commit as its short form; image references whole."""
    if ref and len(ref) == 40 and all(c in "0123456789abcdef" for c in ref):
        return ref[:12]
    return ref or ""


@command("releases", permission=VIEW, examples=("releases hello",))
class Releases:
    """List an app's last releases: number, status, who deployed it and when."""

    app: str = arg("app", "APP")
    env: str | None = option("env", "ENV")

    async def run(self, ctx: Context) -> AsyncIterator[Reply]:
        releases = await ctx.engine.releases(self.app, self.env)
        if not releases:
            env = env_of(self)
            if env != DEFAULT_ENV:  # a typo of an environment is not an empty history
                with contextlib.suppress(SourceError):  # its source is away: say what we know
                    check_env(await ctx.engine.config(self.app), env)
            to = "" if env == DEFAULT_ENV else f" --env {env}"
            yield Message(f"{self.app} has no releases in {env} yet: `deploy {self.app}{to}`")
            return
        rows = tuple(
            (
                str(r.number),
                r.status,
                r.deployed_by,
                when(r.created_at),
                short_ref(r.source_ref),
                r.message or "",
            )
            for r in releases
        )
        yield Table(
            ("release", "status", "by", "when", "ref", "note"),
            rows,
            title=f"{self.app} ({env_of(self)})",
        )
