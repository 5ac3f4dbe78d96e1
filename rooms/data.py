"""The data room: managed databases, their backups, verifies and reports, app volumes."""

from __future__ import annotations

import logging
from collections.abc import Iterable

from commands.replies import Message
from core.config import BackupsConfig, DataConfig
from core.scheduler.clocked import Every
from core.store.schema import data as schema_data
from core.store.schema import versions
from rooms.capability import Capability, Periodic, Running, Schedule

log = logging.getLogger("shipbot.serve")


def periodic(root: Running) -> Iterable[Periodic]:
    """``backups.schedules`` (rebuilt from shipbot.yml at every start), and every round the
    watch for schedules that went silent."""
    settings = root.config.backups
    if settings is None:
        return
    # the family and the watch load only where they run: serve
    from commands.catalog import reports
    from core.scheduler.cron import trigger
    from core.scheduler.jobs import jobs
    from core.watch.backups import BackupWatch

    runner = reports.Runner(root.plane, root.config, root.notifier)
    for job in jobs(settings):
        yield Schedule(
            job.id,
            trigger(job.cron),
            lambda job=job: runner(job),
            grace=settings.misfire_grace_seconds,
        )
    silence = BackupWatch(
        root.plane.store,
        settings,
        lambda post: root.notifier.publish("backups", post.database, None, Message(post.text)),
        clock=root.plane.clock,
    )

    async def check() -> None:
        for post in await silence.check():
            log.info("backups: %s", post.text)

    yield Schedule("backups/silence", Every(root.interval), check)


ROOM = Capability(
    name="data",
    sections={"data": DataConfig, "backups": BackupsConfig},
    tables=(
        "databases",
        "database_apps",
        "database_attachments",
        "backups",
        "backup_watch",
        "backup_verifies",
    ),  # fmt: skip
    migrations=versions(schema_data),
    commands=(
        "backup list",
        "restore",
        "db attach",
        "db create",
        "db detach",
        "db list",
        "db remove",
        "db status",
        "backup report",
        "backup run",
        "backup verify",
        "volume backup",
        "volume backups",
        "volume restore",
    ),
    periodic=periodic,
)
