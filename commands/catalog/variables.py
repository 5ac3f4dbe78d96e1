"""An app's environment variables and secrets, set from chat and passed at the next deploy."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from commands.catalog.context import Context, env_of
from commands.grammar import arg, command, option
from commands.permissions import DEPLOY, VIEW
from commands.replies import Failure, Message, Reply, Result, Table
from core.data import databases
from core.errors import CoreError
from core.secrets import MASK, MIN_SECRET_LENGTH


@command(
    "env set",
    permission=DEPLOY,
    changes_state=True,
    approvable=True,
    examples=("env set hello GREETING=hey", "env set hello LOG_LEVEL=debug --env staging"),
)
class EnvSet:
    """Set an environment variable of an app; the next deploy passes it to the containers."""

    app: str = arg("app", "APP")
    assignment: tuple[str, str] = arg("assignment", "KEY=VALUE")
    env: str | None = option("env", "ENV")
    break_glass: str | None = option("text", "REASON")

    async def run(self, ctx: Context) -> AsyncIterator[Reply]:
        await asyncio.to_thread(ctx.engine.app, self.app)
        key, value = self.assignment
        env = env_of(self)
        await ctx.engine.db.in_thread(
            lambda: ctx.engine.store.set_variable(
                app=self.app, env=env, key=key, value=value, secret=False, updated_by=ctx.user
            )
        )
        yield Result(True, f"{key} set for {self.app} ({env}); `deploy {self.app}` to apply")


@command(
    "env unset",
    permission=DEPLOY,
    changes_state=True,
    approvable=True,
    examples=("env unset hello GREETING",),
)
class EnvUnset:
    """Remove a variable or secret set from chat (app.yml's own env stays)."""

    app: str = arg("app", "APP")
    key: str = arg("key", "KEY")
    env: str | None = option("env", "ENV")
    break_glass: str | None = option("text", "REASON")

    async def run(self, ctx: Context) -> AsyncIterator[Reply]:
        await asyncio.to_thread(ctx.engine.app, self.app)
        env = env_of(self)
        if not await ctx.engine.db.in_thread(
            lambda: ctx.engine.store.unset_variable(app=self.app, env=env, key=self.key)
        ):
            yield Failure(f"{self.key} is not set from chat for {self.app} ({env})")
            return
        yield Result(
            True, f"{self.key} removed from {self.app} ({env}); `deploy {self.app}` to apply"
        )


@command("env list", permission=VIEW, examples=("env list hello",))
class EnvList:
    """Show an app's variables: from app.yml, set from chat, secrets and the URLs of its
    attached databases (both masked)."""

    app: str = arg("app", "APP")
    env: str | None = option("env", "ENV")

    async def run(self, ctx: Context) -> AsyncIterator[Reply]:
        env = env_of(self)
        config = await ctx.engine.config(self.app)
        rows = {key: (key, value, "app.yml") for key, value in config.for_env(env).env.items()}
        for row in await ctx.engine.db.in_thread(lambda: ctx.engine.store.variables(self.app, env)):
            shown, source = (MASK, "secret") if row["secret"] else (row["value"], "chat")
            rows[row["key"]] = (row["key"], shown, f"{source} ({row['updated_by']})")
        names = config.for_env(env).databases
        plane = ctx.engine.plane
        given = await ctx.engine.db.in_thread(
            lambda: databases.variables_of(plane, self.app, env, names)
        )
        for key, source in given.items():  # a URL with a password: masked as a secret is
            rows[key] = (key, MASK, source)
        if not rows:
            yield Message(f"{self.app} ({env}) has no variables")
            return
        yield Table(
            ("key", "value", "from"),
            tuple(rows[k] for k in sorted(rows)),
            title=f"{self.app} ({env})",
        )


@command(
    "secret set",
    permission=DEPLOY,
    changes_state=True,
    approvable=True,
    examples=("secret set hello API_TOKEN",),
)
class SecretSet:
    """Store a secret for an app, encrypted; its value is never typed into the channel.

    The console asks for the value without echo; Slack and Discord open a form.
    """

    app: str = arg("app", "APP")
    key: str = arg("key", "KEY")
    env: str | None = option("env", "ENV")
    break_glass: str | None = option("text", "REASON")

    def precheck(self, ctx: Context) -> None:
        """Before any approval is asked for: the value is there and can be masked."""
        if ctx.secret is None:
            raise CoreError(
                "secret set needs the value from a prompt or form, not the channel: "
                "use the console or your chat's form"
            )
        if len(ctx.secret) < MIN_SECRET_LENGTH:
            raise CoreError(
                f"a secret must be at least {MIN_SECRET_LENGTH} characters, so it "
                "can be masked wherever it would show"
            )

    async def run(self, ctx: Context) -> AsyncIterator[Reply]:
        await asyncio.to_thread(ctx.engine.app, self.app)
        self.precheck(ctx)
        assert ctx.secret is not None
        env = env_of(self)
        await ctx.engine.db.in_thread(
            lambda: ctx.engine.store.set_variable(
                app=self.app,
                env=env,
                key=self.key,
                value=ctx.engine.vault.encrypt(ctx.secret),
                secret=True,
                updated_by=ctx.user,
            )
        )
        yield Result(
            True,
            f"secret {self.key} stored for {self.app} ({env}), encrypted; "
            f"`deploy {self.app}` to apply",
        )
