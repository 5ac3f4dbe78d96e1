"""Pipelines from chat: the webhook's secret and forge token, and preview environments.

A webhook acts as the user ``webhook:APP``; setting the app's webhook secret (admins of the
app) grants it the deployer role on that app, which ``revoke`` takes back. Its deploys pass
through the same steps as anyone's: approval where app.yml asks for it, locks, the audit.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
from collections.abc import AsyncIterator
from typing import Any

from commands.catalog.context import Context, relay
from commands.catalog.dns import after_deploy
from commands.grammar import arg, command
from commands.permissions import ADMIN, DEPLOY, VIEW
from commands.replies import Message, Reply, Result, Table, when
from core.deploy.resolve import Resolved
from core.deploy.spec import derived_names
from core.errors import CoreError, SourceError
from core.names import service_name
from core.pipelines.preview import env_name
from core.pipelines.resolve import resolve_preview
from core.pipelines.teardown import close_preview
from core.secrets import MIN_SECRET_LENGTH

WEBHOOK_PLATFORM = "webhook"
LIVE, FAILED = "live", "failed"


def webhook_user(app: str) -> str:
    return f"{WEBHOOK_PLATFORM}:{app}"


def _sealed_value(ctx: Context, what: str) -> str:
    if ctx.secret is None:
        raise CoreError(
            f"webhook {what} needs the value from a prompt or form, not the channel: "
            "use the console or your chat's form"
        )
    if len(ctx.secret) < MIN_SECRET_LENGTH:
        raise CoreError(f"a webhook {what} must be at least {MIN_SECRET_LENGTH} characters")
    return ctx.engine.vault.encrypt(ctx.secret)


@command("webhook secret", permission=ADMIN, changes_state=True, examples=("webhook secret api",))
class WebhookSecret:
    """Set the secret the forge signs the app's webhook deliveries with (typed in a form).

    Point the forge at https://HOST/hooks/github (or gitlab, gitea) with this secret; the
    webhook then deploys as webhook:APP, which this grants the deployer role on APP.
    """

    app: str = arg("app", "APP")

    def precheck(self, ctx: Context) -> None:
        _sealed_value(ctx, "secret")

    async def run(self, ctx: Context) -> AsyncIterator[Reply]:
        app = await asyncio.to_thread(ctx.engine.app, self.app)
        if app.source_kind != "git":
            raise CoreError(f"{self.app} is built from a folder: webhooks need a git app")
        sealed = _sealed_value(ctx, "secret")
        await ctx.engine.db.in_thread(
            lambda: ctx.engine.store.set_webhook(self.app, user=ctx.user, secret=sealed)
        )
        user = webhook_user(self.app)
        await ctx.engine.db.in_thread(
            lambda: ctx.engine.store.add_grant(
                user=user, role="deployer", app=self.app, env="*", granted_by=ctx.user
            )
        )
        yield Result(
            True,
            f"webhook secret of {self.app} set",
            (
                f"deliveries to /hooks/github, /hooks/gitlab or /hooks/gitea about {app.source} "
                "are checked with it",
                f"{user} holds the deployer role on {self.app} (`revoke {user} deployer "
                f"--app {self.app}` stops webhook deploys)",
            ),
        )


@command("webhook token", permission=ADMIN, changes_state=True, examples=("webhook token api",))
class WebhookToken:
    """Set the forge token previews comment on pull requests with (typed in a form)."""

    app: str = arg("app", "APP")

    def precheck(self, ctx: Context) -> None:
        _sealed_value(ctx, "token")

    async def run(self, ctx: Context) -> AsyncIterator[Reply]:
        await asyncio.to_thread(ctx.engine.app, self.app)
        sealed = _sealed_value(ctx, "token")
        await ctx.engine.db.in_thread(
            lambda: ctx.engine.store.set_webhook(self.app, user=ctx.user, forge_token=sealed)
        )
        yield Result(True, f"forge token of {self.app} set: previews comment their URL")


@command("previews", permission=VIEW, examples=("previews", "previews api"))
class PreviewList:
    """List the preview environments of pull requests."""

    app: str | None = arg("app", "APP", optional=True)

    async def run(self, ctx: Context) -> AsyncIterator[Reply]:
        rows = [
            row
            for row in await ctx.engine.db.in_thread(lambda: ctx.engine.store.previews(self.app))
            if ctx.policy.allows(ctx.user, VIEW, row["app"], row["env"])
        ]
        if not rows:
            yield Message("no preview environments" + (f" of {self.app}" if self.app else ""))
            return
        yield Table(
            ("app", "env", "status", "commit", "author", "domain", "updated"),
            tuple(
                (
                    r["app"],
                    r["env"],
                    r["status"],
                    (r["head_sha"] or "")[:12],
                    r["author"] or "",
                    r["domain"] or "",
                    when(r["updated_at"]),
                )
                for r in rows
            ),
            title="previews",
        )


@command("preview deploy", permission=DEPLOY, locks=True, examples=("preview deploy api 7",))
class PreviewDeploy:
    """Deploy a pull request's head commit as environment pr-N, at its preview domain.

    The webhook runs this on every push to the pull request; it has no secrets of the app.
    """

    app: str = arg("app", "APP")
    number: int = arg("pull", "N")

    @property
    def env(self) -> str:
        return env_name(self.number)

    async def _resolve(self, ctx: Context, row: dict[str, Any]) -> Resolved:
        """The head the pull request has now: a push while this waited (force-pushed, its
        old head gone from the forge) is followed once."""
        plane = ctx.engine.plane
        try:
            return await resolve_preview(
                plane, self.app, self.number, row["head_sha"], row["forge"] or "github"
            )
        except SourceError:
            newer = await ctx.engine.db.in_thread(
                lambda: ctx.engine.store.preview(self.app, self.number)
            )
            if newer is None or newer["head_sha"] == row["head_sha"]:
                raise
            row.update(head_sha=newer["head_sha"])
            return await resolve_preview(
                plane, self.app, self.number, newer["head_sha"], newer["forge"] or "github"
            )

    async def run(self, ctx: Context) -> AsyncIterator[Reply]:
        row = await ctx.engine.db.in_thread(lambda: ctx.engine.store.preview(self.app, self.number))
        if row is None:
            raise CoreError(
                f"{self.app} has no open pull request #{self.number}: previews start when the "
                "forge sends the pull request's event"
            )
        resolved = await self._resolve(ctx, row)
        # every volume any of its pushes made, so the teardown finds those a later push dropped
        volumes = set(json.loads(row["volumes"] or "[]"))
        service = service_name(self.app, self.env)
        volumes.update(n for n in derived_names(resolved.spec, self.env) if n != service)
        limits = ctx.config.pipelines.max_previews, ctx.config.pipelines.max_previews_per_app
        changes = {"domain": resolved.spec.domains[0], "volumes": json.dumps(sorted(volumes))}
        others, mine = await ctx.engine.db.in_thread(
            lambda: ctx.engine.store.claim_preview(self.app, self.number, limits, changes)
        )
        if others >= limits[0]:
            raise CoreError(
                f"{others} previews are open, the most shipbot.yml allows "
                f"(pipelines.max_previews: {limits[0]}): close one, or an admin raises the limit"
            )
        if mine >= limits[1]:
            raise CoreError(
                f"{mine} previews of {self.app} are open, the most shipbot.yml allows one app "
                f"(pipelines.max_previews_per_app: {limits[1]}): close one of them, or an "
                "admin raises the limit; preview refused"
            )
        ctx = dataclasses.replace(ctx, resolved=resolved)
        status, key = FAILED, {"app": self.app, "number": self.number}
        try:
            events = ctx.engine.deploy(resolved, user=ctx.user, approved_by=ctx.approved_by)
            async with contextlib.aclosing(relay(events)) as replies:
                async for reply in replies:
                    if isinstance(reply, Result):
                        status = LIVE if reply.ok else FAILED
                        reply = await after_deploy(ctx, self, reply)
                    yield reply
        finally:
            await asyncio.shield(
                ctx.engine.db.in_thread(
                    lambda: ctx.engine.store.save_preview({**key, "status": status})
                )
            )


@command("preview close", permission=DEPLOY, locks=True, examples=("preview close api 7",))
class PreviewClose:
    """Tear a preview down: service, routes, volumes, DNS records, and its records."""

    app: str = arg("app", "APP")
    number: int = arg("pull", "N")

    @property
    def env(self) -> str:
        return env_name(self.number)

    def run(self, ctx: Context) -> AsyncIterator[Reply]:
        return relay(close_preview(ctx.engine.plane, self.app, self.number, ctx.config.dns))
