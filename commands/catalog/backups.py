"""Backups from chat: run one now, list them, accept a suspect one, restore one into a
database.

Each backup's result (database, size, duration, location, retention) is also posted to the
channels routed the ``backups`` kind, through the outbox. ``backup_and_post`` is what a
schedule calls.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import functools
import os
from collections.abc import AsyncIterator, Mapping
from typing import Any

from commands.approvals import Review
from commands.catalog.context import Context, relay
from commands.catalog.data import may_see
from commands.grammar import arg, command, option
from commands.notify import Notifier
from commands.permissions import ADMIN, VIEW
from commands.replies import Message, Reply, Result, Step, Table
from core.config import BackupsConfig, ControlConfig
from core.data import backup, homes, restore, review, volumes
from core.data.take import take
from core.engine import Engine
from core.errors import CoreError
from core.events import Event
from core.plane import Plane
from core.servers import where
from core.store import Store
from core.store.backups import BACKUP_SUSPECT
from core.store.locks import database_lock

NOT_CONFIGURED = (
    "backups are not configured: add a `backups:` section (s3: {bucket, endpoint, region, "
    "access_key_env, secret_key_env}) to shipbot.yml"
)


def backups_config(config: ControlConfig) -> BackupsConfig:
    if config.backups is None:
        raise backup.BackupError(NOT_CONFIGURED)
    return config.backups


def human(size: int) -> str:
    value = float(size)
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1024 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{size} B"


def report_result(report: backup.Report) -> Result:
    fields = {
        "database": f"{report.database} ({report.kind})",
        "size": human(report.size),
        "duration": f"{report.seconds:.1f}s",
        "location": report.location,
    }
    if report.suspect:
        return Result(
            False,
            f"backup {report.id} of {report.database} is suspect: kept, not counted as good",
            (
                *(f"why: {p}" for p in report.problems),
                f"a large table dropped on purpose? an admin accepts it as the new baseline: "
                f"`backup accept {report.database} {report.id}`",
            ),
            fields,
        )
    if not report.ok:
        return Result(
            False,
            f"backup {report.id} of {report.database} failed",
            tuple(f"why: {p}" for p in report.problems),
            fields,
        )
    kept = (
        f"retention deleted {len(report.deleted)}: {', '.join(report.deleted)}"
        if report.deleted
        else "retention: nothing to delete"
    )
    return Result(
        True, f"backup {report.id} of {report.database} is stored", (kept, *report.notes), fields
    )


async def backup_and_post(
    plane: Plane,
    config: ControlConfig,
    notifier: Notifier,
    name: str,
    by: str,
    environ: Mapping[str, str] | None = None,
) -> Result:
    """One backup of database ``name``, recorded, and its result queued for the channels."""
    volume = volumes.parse_key(name)  # APP/ENV/VOLUME: an app's named volume
    report = await take(plane, backups_config(config), name, volume, by, environ)
    result = report_result(report)
    app, env = (volume.app, volume.env) if volume else (name, None)
    await asyncio.to_thread(notifier.publish, "backups", app, env, result)
    return result


def failure_post(
    notifier: Notifier, store: Store, name: str, error: Exception, by: str, at: float
) -> Result:
    """A run that started and failed before it sent anything (database down, no such
    database, no credentials): recorded as a failed backup, so it is never alerted as a
    run that did not start, and posted with why."""
    backup_id = store.record_failed_start(name, by, at, str(error))
    when = dt.datetime.fromtimestamp(at, dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    result = Result(
        False,
        f"backup {backup_id} of {name} started {when} and failed",
        (f"why: {error}",),
    )
    notifier.publish("backups", name, None, result)
    return result


@command("backup list", permission=VIEW, examples=("backup list maindb",))
class BackupList:
    """List a database's backups, newest first: status, size, when, and why one failed."""

    db: str = arg("app", "NAME")  # a database is no app: no app's grant covers it

    async def run(self, ctx: Context) -> AsyncIterator[Reply]:
        if not await may_see(ctx, self.db):
            # the same answer as for a database that does not exist
            raise CoreError(f"no database {self.db!r}: `db list` shows the ones you may see")
        store = ctx.engine.store
        rows = await ctx.engine.db.in_thread(lambda: store.backups(self.db))
        if not rows:
            # a database's backups outlive it (a removed one's are listed); none, and no
            # database of that name: say so, not "no backups yet"
            missing = volumes.parse_key(self.db) is None and not await ctx.engine.db.in_thread(
                lambda: store.database(self.db)
            )
            if missing:
                raise CoreError(f"no database {self.db!r}: `db list` shows the ones you may see")
            yield Message(f"{self.db} has no backups yet: `backup run {self.db}`")
            return
        yield backups_table(rows)


def backups_table(rows: list[dict[str, Any]]) -> Table:
    out = []
    for row in rows:
        when = dt.datetime.fromtimestamp(row["started_at"], dt.UTC).strftime("%m-%d %H:%M:%S")
        status = "deleted" if row["deleted_at"] else row["status"]
        size = human(row["size"]) if row["size"] is not None else ""
        out.append((str(row["id"]), status, when, size, row["key"], row["error"] or ""))
    return Table(("id", "status", "started", "size", "key", "error"), tuple(out))


@command(
    "restore",
    permission=ADMIN,
    changes_state=True,
    approvable=True,
    examples=("restore maindb 12 --to maindb-copy", "restore maindb 12"),
)
class Restore:
    """Restore backup BACKUP_ID of NAME into the database --to names, then count rows per
    table (keys for Redis). A --to database that does not exist yet is created first, of
    the backup's kind and NAME's version: a restore into a fresh database asks no one.

    Over a database that exists (NAME itself without --to, or an existing --to database)
    it runs once someone other than the requester approved (shipbot.yml `data.approval`),
    or an admin passed `--break-glass REASON`. The approval holds for that database and
    that backup as they were when asked. Over an existing database the restore holds its
    lock (no backup runs meanwhile); tables of a Postgres database are replaced by the
    backup's, tables the backup does not have stay.
    """

    db: str = arg("app", "NAME")  # a database is no app: no app's grant covers it
    backup_id: int = arg("count", "BACKUP_ID")
    to: str | None = option("app", "NEW_NAME")
    break_glass: str | None = option("text", "REASON")

    @property
    def target(self) -> str:
        return self.to or self.db

    @property
    def live(self) -> bool:
        return self.target == self.db

    async def bound(self, engine: Engine) -> str:
        database = await engine.db.in_thread(lambda: engine.store.database(self.target))
        return review.digest(
            database, await engine.db.in_thread(lambda: engine.store.backup(self.backup_id))
        )

    async def review(self, ctx: Context) -> Review | None:
        """Over a database that exists: approval, bound to it and to the backup."""
        database = await ctx.engine.db.in_thread(lambda: ctx.engine.store.database(self.target))
        if database is None and not self.live:
            return None  # a fresh database: nothing in it to lose
        row = await self._kept(ctx)
        if database is None:
            raise CoreError(f"no database {self.db!r}: `db list` shows the ones you may see")
        when = dt.datetime.fromtimestamp(row["started_at"], dt.UTC).strftime("%Y-%m-%d %H:%M")
        live = "live " if self.live else "existing "
        details = (
            f"replaces the data of the {live}{database['kind']} database {self.target}",
            f"with backup {row['id']} of {self.db} from {when} UTC "
            f"({human(row['size'] or 0)}, {row['key']})",
        )
        return Review(ctx.config.data.approval, review.digest(database, row), details)

    async def _kept(self, ctx: Context) -> dict[str, Any]:
        row = await ctx.engine.db.in_thread(lambda: ctx.engine.store.backup(self.backup_id))
        if row is None or row["database"] != self.db:
            raise CoreError(f"{self.db} has no backup {self.backup_id}: `backup list {self.db}`")
        restore.kept(row)
        return row

    async def _precheck(self, ctx: Context, settings: BackupsConfig, row: dict[str, Any]) -> None:
        """Identity, S3's permission and object, disk room (on the server the restore goes
        to): before anything is created."""
        server = await self._server(ctx)
        swarm = await where.client(ctx.engine.plane, server, f"database {self.target}")
        s3 = ctx.engine.plane.clients.s3(settings.s3, None)
        try:
            await asyncio.to_thread(
                restore.precheck,
                swarm,
                s3,
                row,
                os.environ.get(settings.age_identity_env),
                settings.age_identity_env,
                ctx.config.alerts.usage_image,
            )
        finally:
            s3.close()

    async def run(self, ctx: Context) -> AsyncIterator[Reply]:
        settings = backups_config(ctx.config)
        target = self.target
        over = (
            self.live
            or await ctx.engine.db.in_thread(lambda: ctx.engine.store.database(target)) is not None
        )
        if over and ctx.approved_by is None and self.break_glass is None:
            # the dispatcher's gate asks for approval first; a --to database made since
            # the request was reviewed as new lands here too
            yield Result(
                False,
                f"not restoring over the existing database {target} unapproved: ask again "
                "and someone other than you approves it; nothing was changed",
            )
            return
        row = await self._kept(ctx)
        await self._precheck(ctx, settings, row)
        if not over:
            made: Result | None = None
            async for reply in relay(await self._create(ctx, row["kind"])):
                if isinstance(reply, Result):
                    made = reply
                else:
                    yield reply
            if made is None or not made.ok:
                title = made.title if made else "it did not report"
                yield Result(False, f"no database {target} to restore into: {title}")
                return
            yield Step(made.title)
        held: contextlib.AbstractAsyncContextManager[None] = contextlib.nullcontext()
        if over:
            held = database_lock(ctx.engine.store, target, ctx.user, f"restore {self.backup_id}")
        async with held:
            done = await self._restore(ctx, settings, row, target, over)
        counts = [f"{table}: {count}" for table, count in sorted(done.counts.items())]
        yield Result(
            True,
            f"backup {self.backup_id} of {self.db} restored into {target}",
            tuple(counts) or ("the restored database is empty",),
            {"size": human(done.size), "duration": f"{done.seconds:.1f}s"},
        )

    async def _restore(
        self, ctx: Context, settings: BackupsConfig, row: dict[str, Any], target: str, over: bool
    ) -> restore.Restored:
        swarm = await homes.database_swarm(ctx.engine.plane, target)
        into = await asyncio.to_thread(backup.locate, swarm, target, ctx.engine.plane.id)
        s3 = ctx.engine.plane.clients.s3(settings.s3)
        try:
            return await asyncio.to_thread(
                restore.restore,
                swarm,
                s3,
                row,
                into,
                os.environ.get(settings.age_identity_env),
                over,
                settings.age_identity_env,
            )
        finally:
            s3.close()

    async def _server(self, ctx: Context) -> str:
        """Where the restore runs: the target database's server; a new --to database goes
        on the source's (the control plane's own when the source is gone)."""
        for name in (self.target, self.db):
            row = await ctx.engine.db.in_thread(functools.partial(ctx.engine.store.database, name))
            if row is not None and row.get("server"):
                return str(row["server"])
        return ctx.engine.plane.server

    async def _create(self, ctx: Context, kind: str) -> AsyncIterator[Event]:
        """The --to database, of the backup's kind and the source's version (the kind's
        default when the source is gone), on the source's server."""
        assert self.to is not None
        source = await ctx.engine.db.in_thread(lambda: ctx.engine.store.database(self.db))
        version = source["version"] if source and source["kind"] == kind else None
        return ctx.engine.create_database(
            kind,
            self.to,
            version,
            user=ctx.user,
            config=ctx.config.data,
            server=await self._server(ctx),
        )


@command(
    "backup accept",
    permission=ADMIN,
    changes_state=True,
    examples=("backup accept maindb 12",),
)
class BackupAccept:
    """Accept a suspect backup of NAME (smaller than `min_ratio` of the last good one, as
    after a large table was dropped on purpose): it becomes good and the baseline later
    backups are compared with; retention then removes the older failed and suspect ones."""

    db: str = arg("app", "NAME")  # a database is no app: no app's grant covers it
    backup_id: int = arg("count", "BACKUP_ID")

    async def run(self, ctx: Context) -> AsyncIterator[Reply]:
        settings = backups_config(ctx.config)
        store = ctx.engine.store
        row = await asyncio.to_thread(store.backup, self.backup_id)
        if row is None or row["database"] != self.db:
            raise CoreError(f"{self.db} has no backup {self.backup_id}: `backup list {self.db}`")
        if row["status"] != BACKUP_SUSPECT or row["deleted_at"] is not None:
            state = "deleted by retention" if row["deleted_at"] else row["status"]
            raise CoreError(
                f"backup {self.backup_id} of {self.db} is {state}, not suspect: only a suspect "
                f"backup is accepted (`backup list {self.db}` shows which are)"
            )
        clock = ctx.engine.plane.clock
        await asyncio.to_thread(store.accept_backup, self.backup_id, ctx.user, clock.time())
        s3 = ctx.engine.plane.clients.s3(settings.s3, None)
        try:
            deleted, notes = await asyncio.to_thread(
                backup.apply_retention,
                store,
                s3,
                self.db,
                settings.retention.keep_last,
                clock.time,
            )
        finally:
            s3.close()
        yield Result(
            True,
            f"backup {self.backup_id} of {self.db} accepted: later backups are compared with "
            f"its {human(row['size'] or 0)}",
            (f"retention deleted {len(deleted)}: {', '.join(deleted) or 'nothing'}", *notes),
        )
