"""Managed databases from chat: create, list, status, attach to apps, remove.

Creating, attaching and removing databases is for admins of every app and environment
(the commands name no app, so only an `admin` grant on `*`/`*` covers them): a database's
URL carries its password, and attaching one to an app hands that password to whoever
deploys the app. A viewer sees the databases attached to apps they may view.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator

from commands.approvals import Review
from commands.catalog.context import Context, relay
from commands.grammar import arg, command, flag, option
from commands.permissions import ADMIN, VIEW
from commands.replies import Message, Reply, Result, Table
from core.data import db_spec, review
from core.data.databases import DatabaseError
from core.engine import Engine


def visible(ctx: Context, apps: list[str]) -> bool:
    """Viewers of every app see every database; others those attached to apps they see."""
    policy = ctx.policy
    return policy.allows(ctx.user, VIEW, None, None) or any(
        policy.sees(ctx.user, VIEW, app) for app in apps
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
    ),
)
class DbCreate:
    """Create a database (postgres, mariadb, mysql or redis) as a Swarm service.

    One replica on shipbot's network, its data on the volume db-NAME-data, credentials
    generated and kept encrypted. The image comes from shipbot.yml's `data.images`
    (the official image of that version by default).
    """

    kind: str = arg("text", "KIND")
    db: str = arg("app", "NAME")
    version: str | None = option("text", "VERSION")

    def __post_init__(self) -> None:
        db_spec.check_kind(self.kind)
        db_spec.check_name(self.db)
        if self.version is not None:
            db_spec.check_version(self.version)

    def run(self, ctx: Context) -> AsyncIterator[Reply]:
        events = ctx.engine.create_database(
            self.kind, self.db, self.version, user=ctx.user, config=ctx.config.data
        )
        return relay(events)


@command("db list", permission=VIEW, examples=("db list",))
class DbList:
    """List the managed databases you may see, with their apps and tasks."""

    async def run(self, ctx: Context) -> AsyncIterator[Reply]:
        rows = []
        for db in await ctx.engine.list_databases():
            status = await ctx.engine.database_status(db.name)
            if not visible(ctx, status.apps):
                continue
            tasks = f"{status.running}/1 healthy" if status.service else "service gone"
            apps = ", ".join(status.apps) or "none"
            rows.append((db.name, db.kind, db.image, tasks, apps))
        if not rows:
            yield Message("no databases you may see: an admin creates one with `db create`")
            return
        yield Table(("database", "kind", "image", "tasks", "apps"), tuple(rows))


@command("db status", permission=VIEW, examples=("db status maindb",))
class DbStatus:
    """Show a database: its service, image, volume, tasks and the apps attached to it."""

    db: str = arg("app", "NAME")

    async def run(self, ctx: Context) -> AsyncIterator[Reply]:
        try:
            status = await ctx.engine.database_status(self.db)
        except DatabaseError as exc:
            raise _unknown(self.db) from exc
        if not visible(ctx, status.apps):
            raise _unknown(self.db)
        db = status.database
        volume = "present" if status.volume is not None else "missing"
        rows = (
            ("kind", f"{db.kind} {db.version}"),
            ("image", db.image),
            ("service", db.service if status.service else f"{db.service} (gone)"),
            ("address", f"{db.service}:{db.port}"),
            ("volume", f"{db.volume} ({volume})"),
            ("apps", ", ".join(status.apps) or "none"),
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


@command("db attach", permission=ADMIN, changes_state=True, examples=("db attach maindb hello",))
class DbAttach:
    """Let an app use a database: list it under `databases:` in its app.yml, and its
    deploys get DATABASE_URL (REDIS_URL for redis). An app cannot name a database that
    is not attached to it."""

    db: str = arg("app", "NAME")
    to_app: str = arg("app", "APP")

    async def run(self, ctx: Context) -> AsyncIterator[Reply]:
        if await ctx.engine.attach_database(self.db, self.to_app, user=ctx.user):
            yield Result(
                True,
                f"database {self.db} attached to {self.to_app}",
                (f"add `databases: [{self.db}]` to its app.yml, then `deploy {self.to_app}`",),
            )
        else:
            yield Message(f"database {self.db} is attached to {self.to_app} already")


@command("db detach", permission=ADMIN, changes_state=True, examples=("db detach maindb hello",))
class DbDetach:
    """Take a database away from an app: its next deploy that still names it is refused."""

    db: str = arg("app", "NAME")
    to_app: str = arg("app", "APP")

    async def run(self, ctx: Context) -> AsyncIterator[Reply]:
        if await ctx.engine.detach_database(self.db, self.to_app):
            yield Result(True, f"database {self.db} detached from {self.to_app}")
        else:
            yield Message(f"database {self.db} is not attached to {self.to_app}")


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
        return review.digest(await engine.db.database(self.db))

    async def review(self, ctx: Context) -> Review:
        row = await ctx.engine.db.database(self.db)
        if row is None:
            raise _unknown(self.db)
        apps = await ctx.engine.db.database_apps(self.db)
        if apps:
            raise DatabaseError(
                f"{self.db} is attached to {', '.join(apps)}: `db detach {self.db} APP` first"
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
