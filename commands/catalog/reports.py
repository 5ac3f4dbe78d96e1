"""Backups proven and reported: `backup verify`, `backup report`, and what the schedules run.

``Runner`` is what ``shipbot serve``'s scheduler calls for each due job (core.scheduler.jobs):
a backup under the database's lock (``db/NAME``: never two at once, across processes too)
and then the heartbeat URL after a good one; a verify, which waits (bounded) for a backup of
the same database that is running (a verify scheduled in the same minute as the backup meets
it every time); the report. Every result is posted to the ``backups`` channels through the
outbox, and a verify that could not run is posted and logged too: none is dropped.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import AsyncIterator, Mapping

from commands.catalog.backups import backup_and_post, backups_config, failure_post
from commands.catalog.context import Context
from commands.catalog.data import may_see
from commands.grammar import arg, command
from commands.notify import Notifier
from commands.permissions import DEPLOY, VIEW
from commands.replies import Message, Reply, Result, Step, Table
from core.clock import Clock
from core.config import BackupSchedule, BackupsConfig, ControlConfig
from core.data import databases, homes, verify
from core.errors import CoreError
from core.plane import Plane
from core.scheduler.jobs import BACKUP, REPORT, VERIFY, Job
from core.servers import where
from core.store import Store
from core.store.backups import BACKUP_FAILED, BACKUP_SUSPECT
from core.store.locks import DatabaseBusy, database_lock
from core.watch.backups import ago, when

log = logging.getLogger("shipbot.backups")
SCHEDULE_USER = "schedule"
VERIFY_WAIT_SECONDS = 3 * 3600.0  # a verify waits this long for the database's backup
VERIFY_POLL_SECONDS = 5.0
REPORT_COLUMNS = ("database", "schedule", "last good", "age", "failures", "last failure")


async def guarded_backup(
    plane: Plane,
    config: ControlConfig,
    notifier: Notifier,
    name: str,
    by: str,
    environ: Mapping[str, str] | None = None,
) -> Result:
    """A backup under the database's lock, posted; then the heartbeat after a good one. A
    backup already running for ``name`` makes this one a refusal, posted nowhere."""
    settings = backups_config(config)
    try:
        async with database_lock(plane.store, name, by, "backup"):
            try:
                result = await backup_and_post(plane, config, notifier, name, by, environ)
            except CoreError as exc:  # it started and failed: database down, no credentials
                at = plane.clock.time()
                return await asyncio.to_thread(
                    failure_post, notifier, plane.store, name, exc, by, at
                )
    except DatabaseBusy as exc:
        log.warning("backup of %s not started: %s", name, exc)
        return Result(False, f"backup of {name} not started", (f"why: {exc}",))
    if result.ok and settings.heartbeat_url:
        missed = await asyncio.to_thread(plane.clients.ping, settings.heartbeat_url)
        if missed:
            log.warning("backup heartbeat %s: %s", settings.heartbeat_url, missed)
    return result


def verify_result(done: verify.Verified) -> Result:
    counts = [f"{table}: {count}" for table, count in sorted(done.counts.items())]
    fields = {"database": done.database, "duration": f"{done.seconds:.1f}s"}
    if done.backup_id is not None:
        fields["backup"] = str(done.backup_id)
    if done.ok:
        return Result(True, f"backup of {done.database} verified", (done.detail, *counts), fields)
    return Result(False, f"verify of {done.database} failed", (f"why: {done.detail}",), fields)


async def verify_and_post(
    plane: Plane,
    config: ControlConfig,
    notifier: Notifier,
    name: str,
    by: str,
    environ: Mapping[str, str] | None = None,
    wait: float = VERIFY_WAIT_SECONDS,
) -> Result:
    """Verify ``name``'s latest good backup (under its lock), record and post the result.
    While the database is busy (its backup runs) it waits, up to ``wait`` seconds of the
    plane's clock; past that it posts and logs why it did not run."""
    settings = backups_config(config)
    env = os.environ if environ is None else environ
    schedule = settings.schedules.get(name)
    clock = plane.clock
    deadline = clock.monotonic() + wait
    while True:
        try:
            async with database_lock(plane.store, name, by, "verify"):
                done = await _verify(plane, settings, name, by, schedule, env)
            break
        except DatabaseBusy as exc:
            if clock.monotonic() >= deadline:
                log.warning("verify of %s not run: %s", name, exc)
                result = Result(
                    False,
                    f"verify of {name} did not run",
                    (f"why: {exc}, still after {ago(wait)} of waiting",),
                )
                await asyncio.to_thread(notifier.publish, "backups", name, None, result)
                return result
            log.info("verify of %s waits: %s", name, exc)
            await clock.sleep(VERIFY_POLL_SECONDS)
    result = verify_result(done)
    await asyncio.to_thread(notifier.publish, "backups", name, None, result)
    return result


async def _verify(
    plane: Plane,
    settings: BackupsConfig,
    name: str,
    by: str,
    schedule: BackupSchedule | None,
    env: Mapping[str, str],
) -> verify.Verified:
    db = await databases.get(plane, name)
    swarm = await where.client(plane, db.server, f"database {name}")
    s3 = plane.clients.s3(settings.s3, env)
    try:
        return await asyncio.to_thread(
            verify.verify,
            swarm,
            plane.store,
            s3,
            db,
            by=by,
            query=schedule.query if schedule else None,
            identity=env.get(settings.age_identity_env),
            identity_env=settings.age_identity_env,
            clock=plane.clock.time,
        )
    finally:
        s3.close()


def report_rows(store: Store, settings: BackupsConfig, now: float) -> list[tuple[str, ...]]:
    """Every database (managed or scheduled): its last good backup, age, and the failed
    and suspect runs since then (the newest one's reason)."""
    names = sorted({row["name"] for row in store.databases()} | set(settings.schedules))
    rows = []
    for name in names:
        schedule = settings.schedules.get(name)
        good = store.good_backups(name)
        last_good = good[0]["finished_at"] if good else None
        since = [
            row
            for row in store.backups(name)
            if row["status"] in (BACKUP_FAILED, BACKUP_SUSPECT)
            and row["deleted_at"] is None
            and (last_good is None or row["id"] > good[0]["id"])
        ]
        rows.append(
            (
                name,
                schedule.cron if schedule else "",
                when(last_good) if last_good else "never",
                ago(now - last_good) if last_good else "",
                str(len(since)),
                (since[0]["error"] or "")[:160] if since else "",
            )
        )
    return rows


def report(store: Store, settings: BackupsConfig, now: float) -> Table | Message:
    return report_table(report_rows(store, settings, now), "no databases yet")


def report_table(rows: list[tuple[str, ...]], empty: str) -> Table | Message:
    if not rows:
        return Message(f"{empty}: an admin creates one with `db create KIND NAME`")
    return Table(REPORT_COLUMNS, tuple(rows))


class Runner:
    """What the scheduler runs for each due job."""

    def __init__(
        self,
        plane: Plane,
        config: ControlConfig,
        notifier: Notifier,
        environ: Mapping[str, str] | None = None,
        clock: Clock | None = None,
    ) -> None:
        self.plane = plane
        self.config = config
        self.notifier = notifier
        self.environ = environ
        self.clock = clock or plane.clock

    async def __call__(self, job: Job) -> Reply:
        if job.what == BACKUP and job.database:
            return await guarded_backup(
                self.plane, self.config, self.notifier, job.database, SCHEDULE_USER, self.environ
            )
        if job.what == VERIFY and job.database:
            return await verify_and_post(
                self.plane, self.config, self.notifier, job.database, SCHEDULE_USER, self.environ
            )
        if job.what == REPORT:
            settings = backups_config(self.config)
            table = await asyncio.to_thread(report, self.plane.store, settings, self.clock.time())
            await asyncio.to_thread(self.notifier.publish, "backups", None, None, table)
            return table
        raise ValueError(f"not a job: {job}")


@command("backup run", permission=DEPLOY, changes_state=True, examples=("backup run maindb",))
class BackupRun:
    """Back up a database now: streamed to S3, verified, then retention applied.

    It runs under the database's lock, as scheduled ones do (never two at once), and pings
    the heartbeat URL after a good one.
    """

    db: str = arg("app", "NAME")  # a database is no app: no app's grant covers it

    async def run(self, ctx: Context) -> AsyncIterator[Reply]:
        backups_config(ctx.config)
        yield Step(f"backing up {self.db}")
        notifier = ctx.publisher()
        yield await guarded_backup(ctx.engine.plane, ctx.config, notifier, self.db, ctx.user)


@command("backup verify", permission=DEPLOY, changes_state=True, examples=("backup verify maindb",))
class BackupVerify:
    """Prove a database's latest good backup restores: into a throwaway database of the same
    kind, then row counts per table (or the schedule's `query`); recorded and posted."""

    # ``db``, not ``name`` or ``app``: a database is no app, so no app's grant covers it
    db: str = arg("app", "NAME")

    async def run(self, ctx: Context) -> AsyncIterator[Reply]:
        backups_config(ctx.config)
        yield Step(f"restoring the latest good backup of {self.db} into a throwaway database")
        notifier = ctx.publisher()
        yield await verify_and_post(ctx.engine.plane, ctx.config, notifier, self.db, ctx.user)


@command("backup report", permission=VIEW, examples=("backup report",))
class BackupReport:
    """Every database you may see (as `db status` does) with its last good backup's age,
    and the failures since."""

    async def run(self, ctx: Context) -> AsyncIterator[Reply]:
        settings = backups_config(ctx.config)
        rows = await asyncio.to_thread(
            report_rows, ctx.engine.store, settings, ctx.engine.clock.time()
        )
        shown = [row for row in rows if await may_see(ctx, row[0])]
        yield report_table(shown, "no databases you may see")
        for line in await servers_away(ctx.engine.plane, [row[0] for row in shown]):
            yield Message(line)


async def servers_away(plane: Plane, names: list[str]) -> list[str]:
    """One line per server holding some of the databases ``names`` that does not answer
    (all asked at once: a server away costs its connect time-out once, or nothing while
    its outage is remembered): their backups cannot run until it does."""
    rows = await plane.db.in_thread(plane.store.databases)
    held: dict[str, list[str]] = {}
    for row in rows:
        if row["name"] in names:
            held.setdefault(homes.row_server(plane, row), []).append(row["name"])

    async def answers(server: str) -> str | None:
        try:
            await plane.servers.client(server)
        except CoreError as exc:
            return str(exc)
        return None

    errors = await asyncio.gather(*(answers(server) for server in held))
    return [
        f"⚠️ server {server} unreachable: {error}; backups of {', '.join(held[server])} "
        "cannot run until it answers"
        for server, error in zip(held, errors, strict=True)
        if error is not None
    ]
