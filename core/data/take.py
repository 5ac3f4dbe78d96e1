"""One backup taken now, of a database or of an app's named volume: found where it runs
(its server), streamed through the plane's S3 client, recorded. What the scheduler and the
``backup run`` and ``volume backup`` commands share; they post the report as they need."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping

from core.config import BackupsConfig
from core.data import backup, homes, volumes
from core.plane import Plane


async def take(
    plane: Plane,
    settings: BackupsConfig,
    name: str,
    volume: volumes.VolumeRef | None,
    by: str,
    environ: Mapping[str, str] | None = None,
) -> backup.Report:
    """Back up database ``name``, or the app's named ``volume`` (``volumes.parse_key`` of an
    ``APP/ENV/VOLUME`` name), where it runs: the app environment's server for a volume, the
    database's own for a database."""
    if volume is not None:
        swarm = await homes.volume_swarm(plane, volume.app, volume.env)
    else:
        swarm = await homes.database_swarm(plane, name)
    s3 = plane.clients.s3(settings.s3, environ)
    try:
        if volume is not None:
            return await asyncio.to_thread(
                volumes.backup_volume, swarm, plane.store, s3, settings, volume, by
            )
        located = await asyncio.to_thread(backup.locate, swarm, name, plane.id)
        return await asyncio.to_thread(
            backup.run_backup, swarm, plane.store, s3, settings, located, by, plane.clock.time
        )
    finally:
        s3.close()
