"""Domain grants: which names and wildcards each app may route, an admin's word alone
(the rules are in core/edge/grants.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from commands.catalog.context import Context
from commands.grammar import arg, command, option
from commands.permissions import ADMIN, VIEW
from commands.replies import DENIED, Failure, Message, Reply, Result, Table
from core.edge.grants import EVERY_ENV, from_rows, matches, shown_env


def _env_flag(env: str) -> str:
    return "" if env == EVERY_ENV else f" --env {env}"


def _admin_everywhere(ctx: Context) -> Failure | None:
    """A domain is shared by every app: granting one is for admins of all of them."""
    if ctx.policy.allows(ctx.user, ADMIN, None, None):
        return None
    return Failure(
        f"{ctx.user} may not grant domains: that needs the admin role on every app and "
        f"environment. An admin can run `grant {ctx.user} admin`, or grant the domain "
        "themselves; nothing was changed",
        DENIED,
    )


@dataclass(frozen=True)
class _DomainGrantFields:
    """An app, a domain or wildcard, and the environments (a pattern; default all)."""

    app: str = arg("app", "APP")
    pattern: str = arg("domain", "PATTERN")
    env: str | None = option("pattern", "ENV")

    @property
    def envs(self) -> str:
        return self.env or EVERY_ENV


@command(
    "domain grant",
    permission=ADMIN,
    changes_state=True,
    examples=(
        "domain grant shop shop.example.com --env production",
        "domain grant shop '*.shop.example.com'",
        "domain grant shop '*.preview.example.com' --env 'pr-*'",
    ),
)
class DomainGrant(_DomainGrantFields):
    """Let an app route a domain or a wildcard (in every environment, or --env ENV).

    One name or wildcard is granted to one app. An exact name inside another app's
    wildcard may be granted: that name then belongs to its own app. app.yml can only pick
    among the domains granted.
    """

    async def run(self, ctx: Context) -> AsyncIterator[Reply]:
        denied = _admin_everywhere(ctx)
        if denied is not None:
            yield denied
            return
        if await ctx.engine.db.in_thread(lambda: ctx.engine.store.get_app(self.app)) is None:
            yield Failure(f"no app named {self.app}: see `apps list`; nothing was changed")
            return
        added, taken = await ctx.engine.db.in_thread(
            lambda: ctx.engine.store.add_domain_grant(
                app=self.app, pattern=self.pattern, env=self.envs, granted_by=ctx.user
            )
        )
        if taken is not None:
            yield Failure(_taken(self.pattern, taken))
            return
        what = f"{self.app} may route {self.pattern} in {shown_env(self.envs)}"
        if not added:
            yield Result(True, f"{what} already: nothing changed")
            return
        grants = [
            g
            for g in from_rows(
                await ctx.engine.db.in_thread(lambda: ctx.engine.store.domain_grants())
            )
            if g.app != self.app
        ]
        inside = sorted(
            {g.pattern for g in grants if matches(self.pattern, g.pattern)} - {self.pattern}
        )
        over = sorted(
            {f"{g.app}'s {g.pattern}" for g in grants if matches(g.pattern, self.pattern)}
        )
        details = []
        if inside:
            details.append(f"names other apps hold under it stay theirs: {', '.join(inside)}")
        if over:
            details.append(
                f"{', '.join(over)} stops matching it at that app's next deploy (its routing "
                "labels leave out the names granted to other apps)"
            )
        yield Result(True, what, tuple(details))


def _taken(pattern: str, taken: dict[str, Any]) -> str:
    return (
        f"{pattern} is granted to app {taken['app']} ({shown_env(taken['env'])}, by "
        f"{taken['granted_by']}): one name or wildcard routes one app, so nothing was "
        f"changed. To move it, revoke it there first: `domain revoke {taken['app']} "
        f"{pattern}{_env_flag(taken['env'])}`"
    )


@command(
    "domain revoke",
    permission=ADMIN,
    changes_state=True,
    examples=("domain revoke shop shop.example.com --env production",),
)
class DomainRevoke(_DomainGrantFields):
    """Take back a domain grant given with the same app, pattern and --env.

    The next deploy, preview or `dns sync` that names the domain is refused; a release
    that runs keeps its route until the app is deployed again.
    """

    async def run(self, ctx: Context) -> AsyncIterator[Reply]:
        denied = _admin_everywhere(ctx)
        if denied is not None:
            yield denied
            return
        if not await ctx.engine.db.in_thread(
            lambda: ctx.engine.store.remove_domain_grant(
                app=self.app, pattern=self.pattern, env=self.envs
            )
        ):
            yield Failure(
                f"{self.app} has no grant of {self.pattern} in {shown_env(self.envs)}: see "
                f"`domains {self.app}`; nothing was changed"
            )
            return
        yield Result(
            True,
            f"{self.app} may no longer route {self.pattern} in {shown_env(self.envs)}",
            ("a release that runs keeps its route until the app is deployed again",),
        )


@command("domains", permission=VIEW, examples=("domains", "domains shop"))
class Domains:
    """Show which domains and wildcards each app may route, and who granted them."""

    app: str | None = arg("app", "APP", optional=True)

    async def run(self, ctx: Context) -> AsyncIterator[Reply]:
        grants = from_rows(
            await ctx.engine.db.in_thread(lambda: ctx.engine.store.domain_grants(self.app))
        )
        rows = tuple(
            (g.app, g.pattern, g.env, g.granted_by)
            for g in grants
            if ctx.policy.sees(ctx.user, VIEW, g.app)
        )
        if not rows:
            who = f"{self.app} has no" if self.app else "no app has"
            yield Message(
                f"{who} domain grants: an admin runs `domain grant {self.app or 'APP'} DOMAIN`"
            )
            return
        yield Table(("app", "domain", "environments", "granted by"), rows)
