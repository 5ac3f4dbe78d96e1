"""Who may do what (grants), who did what (audit), and help for everyone."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

from commands.catalog.context import Context
from commands.grammar import arg, command, option
from commands.permissions import ADMIN, PUBLIC
from commands.replies import Failure, Message, Reply, Result, Table, when
from core.config.parts import DEFAULT_ENV


@command("whoami", permission=PUBLIC, examples=("whoami",))
class Whoami:
    """Show your platform id and what you may do."""

    async def run(self, ctx: Context) -> AsyncIterator[Reply]:
        grants = ctx.policy.of(ctx.user)
        if not grants:
            who = (
                f"An admin can run `grant {ctx.user} viewer`."
                if ctx.policy.admins
                else f"No admin is configured yet: add `admins: [{ctx.user}]` to shipbot.yml "
                "in $SHIPBOT_HOME to make yourself one."
            )
            yield Message(
                f"you are {ctx.user}; you have no grants yet, so you may run only `help` and "
                f"`whoami`. {who}"
            )
            return
        admin = " (bootstrap admin from shipbot.yml)" if ctx.user in ctx.policy.admins else ""
        yield Message(f"you are {ctx.user}{admin}")
        yield Table(("role", "apps", "environments"), tuple((g.role, g.app, g.env) for g in grants))


@dataclass(frozen=True)
class _GrantFields:
    """A grant: who, which role, on which apps and environments (patterns with * and ?)."""

    user: str = arg("user", "USER")
    role: str = arg("role", "ROLE")
    app: str = option("pattern", "APP", default="*")
    env: str = option("pattern", "ENV", default="*")


@command(
    "grant",
    permission=ADMIN,
    changes_state=True,
    examples=("grant slack:U024BE7LH deployer --app api --env staging", "grant console:bob viewer"),
)
class GrantRole(_GrantFields):
    """Give a user a role on apps and environments (patterns with * and ?; default all).

    Roles: viewer (status, logs, releases), deployer (also deploy, rollback, scale,
    restart), admin (everything, including grants and registering apps).
    """

    async def run(self, ctx: Context) -> AsyncIterator[Reply]:
        added = await ctx.engine.db.in_thread(
            lambda: ctx.engine.store.add_grant(
                user=self.user, role=self.role, app=self.app, env=self.env, granted_by=ctx.user
            )
        )
        what = f"{self.user} is {self.role} on {self.app}/{self.env}"
        yield Result(True, what if added else f"{what} already: nothing changed")


@command(
    "revoke",
    permission=ADMIN,
    changes_state=True,
    examples=("revoke slack:U024BE7LH deployer --app api --env staging",),
)
class RevokeRole(_GrantFields):
    """Take back a grant given with the same user, role, --app and --env."""

    async def run(self, ctx: Context) -> AsyncIterator[Reply]:
        if not await ctx.engine.db.in_thread(
            lambda: ctx.engine.store.remove_grant(
                user=self.user, role=self.role, app=self.app, env=self.env
            )
        ):
            yield Failure(
                f"{self.user} has no {self.role} grant on {self.app}/{self.env}: see `grants "
                f"{self.user}`"
            )
            return
        yield Result(True, f"{self.user} is no longer {self.role} on {self.app}/{self.env}")


@command("grants", permission=ADMIN, examples=("grants", "grants console:bob"))
class Grants:
    """List the grants, of everyone or of one user."""

    user: str | None = arg("user", "USER", optional=True)

    async def run(self, ctx: Context) -> AsyncIterator[Reply]:
        rows = [
            (admin, "admin", "*", "*", "shipbot.yml")
            for admin in sorted(ctx.policy.admins)
            if self.user in (None, admin)
        ]
        rows += [
            (g["user"], g["role"], g["app"], g["env"], g["granted_by"])
            for g in await ctx.engine.db.in_thread(lambda: ctx.engine.store.grants(self.user))
        ]
        if not rows:
            yield Message("no grants" + (f" for {self.user}" if self.user else ""))
            return
        yield Table(("user", "role", "apps", "environments", "granted by"), tuple(rows))


@command("unlock", permission=ADMIN, changes_state=True, examples=("unlock api --env production",))
class Unlock:
    """Clear the deploy lock of an app/env whose process died (it expires by itself too)."""

    app: str = arg("app", "APP")
    env: str | None = option("env", "ENV")

    async def run(self, ctx: Context) -> AsyncIterator[Reply]:
        key = f"{self.app}/{self.env or DEFAULT_ENV}"
        held = await ctx.engine.db.in_thread(lambda: ctx.engine.store.force_unlock(key))
        if held is None:
            yield Message(f"{key} was not locked")
            return
        yield Result(True, f"{key} unlocked (was held by {held['owner']} for {held['what']})")


@command("audit", permission=ADMIN, examples=("audit", "audit hello --limit 50"))
class Audit:
    """Show who did what, where and when, with the result; denials included."""

    app: str | None = arg("app", "APP", optional=True)
    limit: int = option("count", "N", default=20)

    async def run(self, ctx: Context) -> AsyncIterator[Reply]:
        rows = await ctx.engine.db.in_thread(
            lambda: ctx.engine.store.audit_log(self.app, limit=max(1, min(self.limit, 500)))
        )
        if not rows:
            yield Message("the audit log is empty" + (f" for {self.app}" if self.app else ""))
            return
        yield Table(
            ("when", "who", "where", "command", "result", "detail"),
            tuple(
                (
                    when(r["ts"]),
                    r["user"],
                    r["channel"],
                    r["command"],
                    r["result"],
                    r["detail"] or "",
                )
                for r in rows
            ),
        )
