"""Registering apps and listing them."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
from collections.abc import AsyncIterator
from typing import ClassVar

from commands import locks
from commands.approvals import Review
from commands.catalog.context import Context, relay
from commands.catalog.policy import MAX_TITLE, lines_of
from commands.grammar import UsageError, arg, command, flag, option
from commands.permissions import ADMIN, VIEW
from commands.replies import Message, Reply, Result, Step, Table
from core.config.parts import DEFAULT_ENV
from core.deploy import remove
from core.engine import Engine
from core.errors import CoreError
from core.secrets import Masker


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
    A token in the URL (https://user:TOKEN@host/…) is kept encrypted and never shown.
    The policy in its app.yml (approvals, Swarm secrets, host paths, push rules, previews)
    is accepted as it stands: see `policy APP`.
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
            yield Step(f"cloning {Masker([])(self.git)}")
        app, config = await ctx.engine.add_app(
            self.name, user=ctx.user, path=self.path, git=self.git, ref=self.ref
        )
        accepted = await ctx.engine.db.in_thread(lambda: ctx.engine.store.accepted_policy(app.name))
        what = "; ".join(f"{key}: {value}" for key, value in lines_of(accepted["policy"]))
        at = (accepted["commit_sha"] or "")[:12] or "its folder"
        await ctx.engine.db.in_thread(
            lambda: ctx.engine.store.audit(  # the policy accepted with it, in a row of its own
                user=ctx.user,
                channel=ctx.channel,
                command=f"policy accept {app.name}",
                result="ok",
                app=app.name,
                detail=f"accepted with `apps add` at {at}: {what}"[:MAX_TITLE],
            )
        )
        envs = ", ".join(dict.fromkeys([DEFAULT_ENV, *config.environments]))
        details = [f"environments: {envs}"]
        if not any(config.for_env(env).domains for env in [None, *config.environments]):
            details.append("no domains: reachable only inside the swarm network")
        yield Result(
            True,
            f"registered {app.name}",
            tuple(details),
            {"source": app.source, "kind": app.source_kind},
        )


@command("apps list", permission=VIEW, examples=("apps list",))
class AppsList:
    """List the registered apps and where they come from."""

    async def run(self, ctx: Context) -> AsyncIterator[Reply]:
        apps = [
            a
            for a in await ctx.engine.db.in_thread(lambda: ctx.engine.store.list_apps())
            if ctx.policy.sees(ctx.user, VIEW, a.name)
        ]
        if not apps:
            yield Message("no apps yet: register one with `apps add NAME --path DIR`")
            return
        rows = tuple((a.name, a.source_kind, a.source, a.ref or "", a.created_by) for a in apps)
        yield Table(("app", "kind", "source", "ref", "added by"), rows)


@command(
    "apps remove",
    permission=ADMIN,
    changes_state=True,
    approvable=True,
    examples=(
        "apps remove hello",
        "apps remove hello --env staging",
        "apps remove hello --delete-volumes",
        'apps remove hello --break-glass "leaked key, owners asleep"',
    ),
)
class AppsRemove:
    """Undeploy an app and unregister it, or with --env undeploy one environment only.

    Its services (and so their routes), networks, release images and the DNS records
    shipbot made for it go; named volumes stay unless --delete-volumes. Without --env,
    every environment and preview goes, and so do its registration, variables, secrets,
    accepted policy, its own grants, domain grants, links and database attachments; the
    audit keeps its history. Only what this control plane made is removed. Where an
    environment asks for approval (production by default), someone other than the
    requester approves first; admins may `--break-glass REASON` instead.
    """

    default_env: ClassVar[str | None] = None  # no --env: every environment, not production

    app: str = arg("app", "APP")
    env: str | None = option("env", "ENV")
    delete_volumes: bool = flag()
    break_glass: str | None = option("text", "REASON")

    async def scope(self, engine: Engine) -> remove.Scope:
        await asyncio.to_thread(engine.app, self.app)  # an unknown app says so here
        try:
            config = await engine.config(self.app)
        except CoreError:  # a source that cannot be read any more: what the store knows
            config = None
        return await remove.scope(engine.plane, self.app, self.env, config)

    async def bound(self, engine: Engine) -> str:
        """The app as registered and the environments it has: one removed and added again,
        or a new environment deployed since, is not what was approved."""
        scope = await self.scope(engine)
        row = await asyncio.to_thread(engine.app, self.app)
        seen = json.dumps([row.source, row.created_at, scope.envs])
        return hashlib.sha256(seen.encode()).hexdigest()[:16]

    async def review(self, ctx: Context) -> Review | None:
        scope = await self.scope(ctx.engine)
        rule = await remove.approval(ctx.engine.plane, scope)
        if rule is None:
            return None
        volumes = "deleted" if self.delete_volumes else "kept"
        what = "and unregistered" if scope.whole else "(the app stays registered)"
        details = (
            f"{self.app}: {', '.join(scope.envs)} undeployed {what}",
            f"named volumes {volumes}",
        )
        return Review(rule, await self.bound(ctx.engine), details)

    async def run(self, ctx: Context) -> AsyncIterator[Reply]:
        scope = await self.scope(ctx.engine)
        async with contextlib.AsyncExitStack() as held:
            for env in scope.envs:  # no deploy of it may run meanwhile
                what = f"`apps remove {self.app}` for {ctx.user}"
                await held.enter_async_context(
                    locks.hold(ctx.engine.store, self.app, env, ctx.user, what)
                )
            events = remove.remove(
                ctx.engine.plane,
                scope,
                dns=ctx.config.dns,
                delete_volumes=self.delete_volumes,
                user=ctx.user,
            )
            async for reply in relay(events):
                yield reply
