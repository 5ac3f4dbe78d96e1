"""Managed databases from chat: create, list, status, attach to apps, remove.

Creating, attaching and removing databases is for admins of every app and environment
(the commands name no app, so only an `admin` grant on `*`/`*` covers them): a database's
URL carries its password, and attaching one to an app environment hands that password to
whoever deploys the app there. A viewer sees the databases attached to the app
environments they may view.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import functools
from collections.abc import AsyncIterator

from commands.approvals import Review
from commands.catalog.context import Context, env_of, relay
from commands.catalog.words import tasks_word
from commands.grammar import arg, command, flag, option
from commands.permissions import ADMIN, VIEW, Denied
from commands.replies import Message, Reply, Result, Table
from core.data import db_spec, review, volumes
from core.data.databases import DatabaseError, ForeignDatabase, shown
from core.engine import Engine
from core.servers.errors import ServerUnreachable


def seen(ctx: Context, pairs: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """The attachments (app, environment) ``ctx.user`` may view."""
    return [(app, env) for app, env in pairs if ctx.policy.allows(ctx.user, VIEW, app, env)]


def visible(ctx: Context, pairs: list[tuple[str, str]]) -> bool:
    """Viewers of every app see every database; others those attached to the app
    environments they may view. Every command of the data family asks this."""
    return ctx.policy.allows(ctx.user, VIEW, None, None) or bool(seen(ctx, pairs))


async def may_see(ctx: Context, name: str) -> bool:
    """``visible`` for what backups are kept under: a database's name, or an app's volume
    as ``APP/ENV/VOLUME`` (seen by the viewers of that app environment)."""
    volume = volumes.parse_key(name)
    if volume is not None:
        return ctx.policy.allows(ctx.user, VIEW, volume.app, volume.env)
    return visible(
        ctx, await ctx.engine.db.in_thread(lambda: ctx.engine.store.database_attachments(name))
    )


def everywhere(ctx: Context) -> None:
    """Attaching is for admins of every app and environment, whatever --env names: an
    admin of staging alone must not hand staging a production database's password."""
    if not ctx.policy.allows(ctx.user, ADMIN, None, None):
        raise Denied(
            f"{ctx.user} may not attach or detach databases: that needs the admin role on "
            f"every app and environment. An admin of everything runs it; nothing was changed"
        )


def _unknown(name: str) -> DatabaseError:
    return DatabaseError(f"no database {name!r}: `db list` shows the ones you may see")


@command(
    "db create",
    permission=ADMIN,
    changes_state=True,
    examples=(
        "db create postgres maindb",
        "db create postgres maindb --version 15",
        "db create redis cache",
        "db create postgres eudb --server eu-1",
    ),
)
class DbCreate:
    """Create a database (postgres, mariadb, mysql or redis) as a Swarm service.

    One replica on its own network, its data on the volume db-NAME-data, credentials
    generated and kept encrypted. The image comes from shipbot.yml's `data.images`
    (the official image of that version by default). It runs on --server (the control
    plane's own server by default), and its backups, restores and apps stay on that
    server's swarm.
    """

    kind: str = arg("text", "KIND")
    db: str = arg("app", "NAME")
    version: str | None = option("text", "VERSION")
    server: str | None = option("app", "SERVER")

    def __post_init__(self) -> None:
        db_spec.check_kind(self.kind)
        db_spec.check_name(self.db)
        if self.version is not None:
            db_spec.check_version(self.version)

    def run(self, ctx: Context) -> AsyncIterator[Reply]:
        events = ctx.engine.create_database(
            self.kind,
            self.db,
            self.version,
            user=ctx.user,
            config=ctx.config.data,
            server=self.server,
        )
        return relay(events)


@command("db list", permission=VIEW, examples=("db list",))
class DbList:
    """List the managed databases you may see, with their server, apps and tasks. A server
    that does not answer shows its databases' tasks as unknown."""

    async def run(self, ctx: Context) -> AsyncIterator[Reply]:
        found = []
        for db in await ctx.engine.list_databases():
            pairs = await ctx.engine.db.in_thread(
                functools.partial(ctx.engine.store.database_attachments, db.name)
            )
            if visible(ctx, pairs):
                found.append((db, pairs))

        away: dict[str, str] = {}  # server → why it did not answer: said once, not per row

        async def tasks_of(name: str, server: str) -> str:
            try:
                status = await ctx.engine.database_status(name)
            except ServerUnreachable as exc:
                away.setdefault(server, str(exc.__cause__ or exc))
                return "unknown (server unreachable)"
            return tasks_word(status.running, 1) if status.service else "service gone"

        # every server at once: one that is away costs its time-out once, not per database
        words = await asyncio.gather(*(tasks_of(db.name, db.server) for db, _ in found))
        rows = [
            (db.name, db.kind, db.image, tasks, shown(seen(ctx, pairs)) or "none", db.server)
            for (db, pairs), tasks in zip(found, words, strict=True)
        ]
        if not rows:
            yield Message("no databases you may see: an admin creates one with `db create`")
            return
        yield Table(("database", "kind", "image", "tasks", "apps", "server"), tuple(rows))
        for server, error in sorted(away.items()):
            yield Message(f"⚠️ server {server} unreachable: {error}")


@command("db status", permission=VIEW, examples=("db status maindb",))
class DbStatus:
    """Show a database: its service, image, volume, tasks and the apps attached to it."""

    db: str = arg("app", "NAME")

    async def run(self, ctx: Context) -> AsyncIterator[Reply]:
        try:
            status = await ctx.engine.database_status(self.db)
        except (ForeignDatabase, ServerUnreachable):
            if not await may_see(ctx, self.db):
                raise _unknown(self.db) from None
            raise
        except DatabaseError as exc:
            raise _unknown(self.db) from exc
        if not visible(ctx, status.attachments):
            raise _unknown(self.db)
        db = status.database
        volume = "present" if status.volume is not None else "missing"
        rows = (
            ("kind", f"{db.kind} {db.version}"),
            ("image", db.image),
            ("server", db.server),
            ("service", db.service if status.service else f"{db.service} (gone)"),
            ("address", f"{db.service}:{db.port}"),
            ("volume", f"{db.volume} ({volume})"),
            ("apps", shown(seen(ctx, status.attachments)) or "none"),
            ("variable", db.variable),
            ("created", f"{_when(db.created_at)} by {db.created_by}"),
        )
        yield Table(("", db.name), rows)
        tasks = sorted(status.tasks, key=lambda t: t.get("UpdatedAt", ""), reverse=True)[:5]
        if tasks:
            yield Table(
                ("task", "desired", "state", "since", "message"),
                tuple(
                    (
                        t["ID"][:12],
                        t["DesiredState"],
                        t["Status"]["State"],
                        t["Status"].get("Timestamp", "")[:19].replace("T", " "),
                        t["Status"].get("Err") or t["Status"].get("Message", ""),
                    )
                    for t in tasks
                ),
                title="tasks, newest first",
            )


@command(
    "db attach",
    permission=ADMIN,
    changes_state=True,
    examples=("db attach maindb hello", "db attach stagingdb hello --env staging"),
)
class DbAttach:
    """Let an app in one environment (production unless --env names another) use a
    database: list it under `databases:` in its app.yml, and its deploys there get
    DATABASE_URL (REDIS_URL for redis). An app cannot name a database that is not
    attached to it in the environment it deploys: each environment is attached apart."""

    db: str = arg("app", "NAME")
    to_app: str = arg("app", "APP")
    env: str | None = option("env", "ENV")

    def precheck(self, ctx: Context) -> None:
        everywhere(ctx)

    async def run(self, ctx: Context) -> AsyncIterator[Reply]:
        env = env_of(self)
        if await ctx.engine.attach_database(self.db, self.to_app, env, user=ctx.user):
            yield Result(
                True,
                f"database {self.db} attached to {self.to_app} ({env})",
                (
                    f"add `databases: [{self.db}]` to its app.yml for {env}, then "
                    f"`deploy {self.to_app} --env {env}`",
                ),
            )
        else:
            yield Message(f"database {self.db} is attached to {self.to_app} ({env}) already")


@command(
    "db detach",
    permission=ADMIN,
    changes_state=True,
    examples=("db detach maindb hello", "db detach stagingdb hello --env staging"),
)
class DbDetach:
    """Take a database away from an app in one environment (production unless --env):
    its next deploy there that still names it is refused."""

    db: str = arg("app", "NAME")
    to_app: str = arg("app", "APP")
    env: str | None = option("env", "ENV")

    def precheck(self, ctx: Context) -> None:
        everywhere(ctx)

    async def run(self, ctx: Context) -> AsyncIterator[Reply]:
        env = env_of(self)
        if await ctx.engine.detach_database(self.db, self.to_app, env):
            yield Result(True, f"database {self.db} detached from {self.to_app} ({env})")
        else:
            yield Message(f"database {self.db} is not attached to {self.to_app} ({env})")


@command(
    "db remove",
    permission=ADMIN,
    changes_state=True,
    approvable=True,
    examples=(
        "db remove maindb",
        "db remove cache --delete-data",
        'db remove cache --break-glass "disk full, approvers asleep"',
    ),
)
class DbRemove:
    """Remove a database's service; its data stays on its volume unless --delete-data.

    Someone other than the requester approves it first (shipbot.yml `data.approval`: one
    admin of every app by default); admins may `--break-glass REASON` instead, announced
    and audited. The approval holds for the database as it was when asked: one removed
    and created again under the name since is not what was approved. Refused while any
    app is attached to it.
    """

    db: str = arg("app", "NAME")
    delete_data: bool = flag()
    break_glass: str | None = option("text", "REASON")

    async def bound(self, engine: Engine) -> str:
        return review.digest(await engine.db.in_thread(lambda: engine.store.database(self.db)))

    async def review(self, ctx: Context) -> Review:
        row = await ctx.engine.db.in_thread(lambda: ctx.engine.store.database(self.db))
        if row is None:
            raise _unknown(self.db)
        pairs = await ctx.engine.db.in_thread(
            lambda: ctx.engine.store.database_attachments(self.db)
        )
        if pairs:
            raise DatabaseError(
                f"{self.db} is attached to {shown(pairs)}: "
                f"`db detach {self.db} APP --env ENV` first"
            )
        volume = db_spec.volume_name(self.db)
        data = (
            f"its data is deleted with it (volume {volume})"
            if self.delete_data
            else f"its data stays on volume {volume}"
        )
        what = f"{row['kind']} {row['version']}, created {_when(row['created_at'])}"
        details = (f"database {self.db}: {what} by {row['created_by']}", data)
        return Review(ctx.config.data.approval, review.digest(row), details)

    def run(self, ctx: Context) -> AsyncIterator[Reply]:
        return relay(ctx.engine.remove_database(self.db, delete_data=self.delete_data))


def _when(stamp: float) -> str:
    return dt.datetime.fromtimestamp(stamp, dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
