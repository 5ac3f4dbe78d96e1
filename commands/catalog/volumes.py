"""Apps' named volumes from chat: back one up now, list its backups, restore one into a new
volume (``core.data.volumes``). Schedules name a volume ``APP/ENV/VOLUME`` in
``backups.schedules``, beside the databases.

Permissions follow the app and environment: backing up reads the app's data and keeps a
copy where only shipbot reaches it, as `backup run` does (deploy); listing is viewing;
restoring writes the app's data into a volume the app may mount, so it is for the app's
admins, and only from that app's own volume in that environment, never into a volume that
exists.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator

from commands.catalog.backups import backups_config, backups_table, human
from commands.catalog.context import Context, env_of
from commands.catalog.reports import guarded_backup
from commands.grammar import arg, command, option
from commands.permissions import ADMIN, DEPLOY, VIEW
from commands.replies import Message, Reply, Result, Step
from core.data import homes, volumes
from core.data.volumes import VolumeRef, check_volume
from core.errors import CoreError
from core.store.backups import BACKUP_OK


@command(
    "volume backup",
    permission=DEPLOY,
    changes_state=True,
    examples=("volume backup shop data", "volume backup shop data --env staging"),
)
class VolumeBackup:
    """Back up an app's named volume now (app.yml `volumes: [data:/data]` → `data`): a tar
    stream to S3, verified, then retention applied, under the volume's lock."""

    app: str = arg("app", "APP")
    volume: str = arg("text", "VOLUME")
    env: str | None = option("env", "ENV")

    def __post_init__(self) -> None:
        check_volume(self.volume)

    async def run(self, ctx: Context) -> AsyncIterator[Reply]:
        backups_config(ctx.config)
        ref = VolumeRef(self.app, env_of(self), self.volume)
        yield Step(f"backing up volume {ref.engine_name} of {self.app} ({ref.env})")
        notifier = ctx.publisher()
        yield await guarded_backup(ctx.engine.plane, ctx.config, notifier, ref.key, ctx.user)


@command("volume backups", permission=VIEW, examples=("volume backups shop data",))
class VolumeBackups:
    """List the backups of an app's named volume, newest first."""

    app: str = arg("app", "APP")
    volume: str = arg("text", "VOLUME")
    env: str | None = option("env", "ENV")

    def __post_init__(self) -> None:
        check_volume(self.volume)

    async def run(self, ctx: Context) -> AsyncIterator[Reply]:
        ref = VolumeRef(self.app, env_of(self), self.volume)
        rows = await ctx.engine.db.in_thread(lambda: ctx.engine.store.backups(ref.key))
        if not rows:
            yield Message(f"volume {self.volume} of {self.app} ({ref.env}) has no backups yet")
            return
        yield backups_table(rows)


@command(
    "volume restore",
    permission=ADMIN,
    changes_state=True,
    examples=("volume restore shop data 12 --to data-restored",),
)
class VolumeRestore:
    """Restore backup BACKUP_ID of an app's named volume into the new volume --to names
    (never one that exists), then count its files. The app mounts it once its app.yml
    lists `NEW_VOLUME:/path` and it is deployed."""

    app: str = arg("app", "APP")
    volume: str = arg("text", "VOLUME")
    backup_id: int = arg("count", "BACKUP_ID")
    to: str | None = option("text", "NEW_VOLUME")
    env: str | None = option("env", "ENV")

    def __post_init__(self) -> None:
        check_volume(self.volume)
        if self.to is None:
            raise ValueError("restoring a volume needs --to NEW_VOLUME: it goes into a new one")
        check_volume(self.to)

    async def run(self, ctx: Context) -> AsyncIterator[Reply]:
        settings = backups_config(ctx.config)
        assert self.to is not None
        ref = VolumeRef(self.app, env_of(self), self.volume)
        into = VolumeRef(self.app, ref.env, self.to)
        row = await ctx.engine.db.in_thread(lambda: ctx.engine.store.backup(self.backup_id))
        if row is None or row["database"] != ref.key:
            raise CoreError(
                f"volume {self.volume} of {self.app} ({ref.env}) has no backup {self.backup_id}: "
                f"`volume backups {self.app} {self.volume}`"
            )
        if row["status"] != BACKUP_OK or row["deleted_at"] is not None:
            state = "deleted by retention" if row["deleted_at"] else row["status"]
            raise CoreError(f"backup {self.backup_id} of {ref.key} is {state}")
        yield Step(f"restoring backup {self.backup_id} into the new volume {into.engine_name}")
        swarm = await homes.volume_swarm(ctx.engine.plane, into.app, into.env)
        s3 = ctx.engine.plane.clients.s3(settings.s3)
        try:
            done = await asyncio.to_thread(
                volumes.restore_volume,
                swarm,
                s3,
                settings,
                row,
                into,
                os.environ.get(settings.age_identity_env),
                ctx.engine.plane.id,
            )
        finally:
            s3.close()
        yield Result(
            True,
            f"backup {self.backup_id} of volume {self.volume} restored into {into.engine_name}",
            (
                f"files: {done.counts.get('files', 0)}",
                f"the app mounts it once app.yml lists `{self.to}:/path` and it is deployed",
            ),
            {"size": human(done.size), "duration": f"{done.seconds:.1f}s"},
        )
