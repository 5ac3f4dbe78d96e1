"""Registering apps and listing them."""

from __future__ import annotations

from collections.abc import AsyncIterator

from commands.catalog.context import Context
from commands.catalog.policy import MAX_TITLE, lines_of
from commands.grammar import UsageError, arg, command, option
from commands.permissions import ADMIN, VIEW
from commands.replies import Message, Reply, Result, Step, Table
from core.appspec import DEFAULT_ENV
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
