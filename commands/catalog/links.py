"""Links between apps from chat: an admin lets one app reach another in one environment.

app.yml's ``links: [other]`` is only the request; ``link grant`` is the decision. It needs
the admin role on both apps in that environment: a push to one app's repository, or an
admin of that app alone, never opens another team's app to it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from commands.catalog.context import Context, env_of, relay
from commands.grammar import arg, command, option
from commands.permissions import ADMIN, VIEW
from commands.replies import Message, Reply, Result, Table, when
from core.deploy import links


def _admin_of_other(ctx: Context, other: str, env: str) -> None:
    if not ctx.policy.allows(ctx.user, ADMIN, other, env):
        raise links.LinkError(ctx.policy.denial(ctx.user, ADMIN, other, env))


@command(
    "link grant",
    permission=ADMIN,
    changes_state=True,
    examples=("link grant web api", "link grant web api --env staging"),
)
class LinkGrant:
    """Let APP reach OTHER in one environment, once APP's app.yml asks for it with
    `links: [OTHER]`: APP's next deploy puts its service on OTHER's network too. Needs the
    admin role on both apps there."""

    app: str = arg("app", "APP")
    other: str = arg("app", "OTHER")
    env: str | None = option("env", "ENV")

    async def run(self, ctx: Context) -> AsyncIterator[Reply]:
        env = env_of(self)
        _admin_of_other(ctx, self.other, env)
        plane = ctx.engine.plane
        if not await links.grant(plane, self.app, self.other, env, user=ctx.user):
            yield Message(f"{self.app} may reach {self.other} in {env} already")
            return
        yield Result(
            True,
            f"{self.app} may reach {self.other} in {env}",
            (f"with `links: [{self.other}]` in its app.yml, `deploy {self.app} --env {env}`",),
        )


@command(
    "link revoke",
    permission=ADMIN,
    changes_state=True,
    examples=("link revoke web api", "link revoke web api --env staging"),
)
class LinkRevoke:
    """Take a link away: APP's service leaves OTHER's network now, and a deploy of APP
    whose app.yml still asks for it is refused."""

    app: str = arg("app", "APP")
    other: str = arg("app", "OTHER")
    env: str | None = option("env", "ENV")

    async def run(self, ctx: Context) -> AsyncIterator[Reply]:
        env = env_of(self)
        _admin_of_other(ctx, self.other, env)
        async for reply in relay(links.revoke(ctx.engine.plane, self.app, self.other, env)):
            yield reply


@command("link list", permission=VIEW, examples=("link list web",))
class LinkList:
    """The apps APP may reach, per environment, and who granted each."""

    app: str = arg("app", "APP")

    async def run(self, ctx: Context) -> AsyncIterator[Reply]:
        rows = await ctx.engine.db.in_thread(lambda: ctx.engine.store.links(self.app))
        if not rows:
            yield Message(f"{self.app} reaches no other app (`link grant` lets it)")
            return
        yield Table(
            ("env", "reaches", "granted by", "when"),
            tuple((r["env"], r["other"], r["granted_by"], when(r["granted_at"])) for r in rows),
        )
