"""Helper and job services a crash left behind, removed: release and ``run`` jobs
(``shipbot.job.kind``), volume-backup helpers (``shipbot.volume.helper``) and the scratch
databases a backup's verify made (``shipbot.db`` = ``verify-…``), with their volumes. Each
is made, waited on and removed by one operation; one whose maker stopped is an orphan.

Which are orphans: each carries the process that made it (``shipbot.owner``,
core/process.py). One whose owner provably no longer runs (same pid namespace, since this
boot) is swept at once: a shipbot restarted after a crash leaves nothing behind. One whose
owner is in another pid namespace (shipbot restarted in a new container) is judged by the
lock its operation holds in the store while it runs (the app/env lock of a deploy or a
``run``, the database lock of a backup or a verify): nobody holds it, or its holder stopped
beating for the lock time-out, and it is swept. One that neither tells (made before the
label, or a helper whose backup row is not written yet) is swept only when older than
``after`` seconds, a bound well past the longest job or helper, so work another live
shipbot process runs is never cut short. Only services and volumes
carrying this control plane's id (``shipbot.plane``) are touched: another plane's work on
the same swarm is never looked at.

What an orphan belonged to is recorded as interrupted: an audit row per orphan; the
deployment of a release job (and its release becomes unknown until read back from Swarm);
the running backup of a volume helper. A database backup runs through ``exec`` in the
database's own container, with no helper: its row still says running after its process
died. Every backup runs under its database's lock from before its row is written until
after it is finished, so a running row whose lock nobody holds (or whose holder stopped
beating) is recorded interrupted too (``unheld_backups``).

``leftovers`` and ``scratch_volumes`` are pure; ``sweep`` does one server; ``sweep_all``
does every server, each on its own (one away is logged and skipped).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from core.data.db_spec import LABEL_DB
from core.data.volumes import parse_key
from core.errors import CoreError
from core.names import LABEL_HELPER, LABEL_PLANE
from core.plane import Plane
from core.process import LABEL_OWNER, gone
from core.store import Store
from core.store.locks import database_key, ttl_seconds
from core.swarm import SwarmClient
from core.swarm.jobs import LABEL_JOB_APP, LABEL_JOB_ENV, LABEL_JOB_KIND
from core.watch.facts import engine_time

log = logging.getLogger("shipbot.sweep")
AFTER_SECONDS = 6 * 3600.0  # past any job's or helper's own time-out
LABELS = (LABEL_JOB_KIND, LABEL_HELPER, LABEL_DB)  # what marks a helper or a job
SCRATCH = "verify-"  # the name a verify's scratch database starts with (core/data/verify.py)
SWEPT_BY = "shipbot"  # the audit's user for what shipbot itself removed
INTERRUPTED = "interrupted"


@dataclass(frozen=True)
class Orphan:
    """A helper or job removed, and what it was doing."""

    name: str
    labels: Mapping[str, str]

    @property
    def what(self) -> str:
        if LABEL_JOB_KIND in self.labels:
            return f"{self.labels[LABEL_JOB_KIND]} job"
        if LABEL_HELPER in self.labels:
            return "volume backup helper"
        return "verify's scratch database"

    @property
    def owner_pid(self) -> int | None:
        parts = self.labels.get(LABEL_OWNER, "").split("/")
        return int(parts[2]) if len(parts) == 4 and parts[2].isdigit() else None


def is_helper(labels: Mapping[str, str]) -> bool:
    if LABEL_JOB_KIND in labels or LABEL_HELPER in labels:
        return True
    return labels.get(LABEL_DB, "").startswith(SCRATCH)


def _labels(found: Mapping[str, Any]) -> Mapping[str, str]:
    return (found.get("Spec") or {}).get("Labels") or {}


def owner_gone(labels: Mapping[str, str]) -> bool | None:
    """Whether the process that made a helper or job stopped (None: cannot tell)."""
    owner = labels.get(LABEL_OWNER)
    return gone(owner) if owner else None


def backup_of(volume: str, running_backups: Iterable[Mapping[str, Any]]) -> str | None:
    """The volume (``APP/ENV/VOLUME``) a running backup reads through the helper mounting
    engine volume ``volume``; None when no running backup row names it."""
    for row in running_backups:
        ref = parse_key(row["database"])
        if ref is not None and ref.engine_name == volume:
            return row["database"]
    return None


def lock_of(labels: Mapping[str, str], running_backups: Iterable[Mapping[str, Any]]) -> str | None:
    """The store lock the operation that made a helper or job holds while it runs
    (commands/locks.py, core/store/locks.py); None when the labels do not say."""
    app, env = labels.get(LABEL_JOB_APP), labels.get(LABEL_JOB_ENV)
    if app and env:
        return f"{app}/{env}"
    volume = labels.get(LABEL_HELPER)
    if volume:
        backup = backup_of(volume, running_backups)
        return database_key(backup) if backup else None
    scratch = labels.get(LABEL_DB, "")
    if scratch.startswith(SCRATCH):  # verify-NAME-BACKUP (core/data/verify.py)
        return database_key(scratch.removeprefix(SCRATCH).rpartition("-")[0])
    return None


def judge(store: Store, now: float, ttl: float) -> Callable[[Mapping[str, str]], bool | None]:
    """Whether a leftover's maker stopped: by its process where this process can see it,
    else by its operation's lock (blocking: reads the store)."""
    running = store.running_backups()

    def dead(labels: Mapping[str, str]) -> bool | None:
        stopped = owner_gone(labels)
        if stopped is not None or LABEL_OWNER not in labels:
            return stopped
        key = lock_of(labels, running)
        if key is None:
            return None
        holder = store.lock(key)
        return holder is None or holder["heartbeat_at"] < now - ttl

    return dead


def leftovers(
    services: Iterable[Mapping[str, Any]],
    plane_id: str,
    now: float,
    after: float,
    dead: Callable[[Mapping[str, str]], bool | None] = owner_gone,
) -> list[str]:
    """The names of this plane's helpers and jobs whose maker ``dead`` says stopped, or
    that it cannot tell of and that were made more than ``after`` seconds ago."""
    out = set()
    for service in services:
        labels = _labels(service)
        if labels.get(LABEL_PLANE) != plane_id or not is_helper(labels):
            continue
        stopped = dead(labels)
        if stopped:
            out.add(service["Spec"]["Name"])
            continue
        created = service.get("CreatedAt")
        if stopped is None and created and now - engine_time(created) > after:
            out.add(service["Spec"]["Name"])
    return sorted(out)


def scratch_volumes(
    volumes: Iterable[Mapping[str, Any]], services: Iterable[Mapping[str, Any]], plane_id: str
) -> list[str]:
    """This plane's scratch database volumes that no scratch service still mounts (a
    verify removes its service, then the volume: a crash between the two left it)."""
    used = {
        mount.get("Source")
        for service in services
        for mount in ((service.get("Spec") or {}).get("TaskTemplate") or {})
        .get("ContainerSpec", {})
        .get("Mounts")
        or []
    }
    return sorted(
        volume["Name"]
        for volume in volumes
        if (volume.get("Labels") or {}).get(LABEL_PLANE) == plane_id
        and (volume.get("Labels") or {}).get(LABEL_DB, "").startswith(SCRATCH)
        and volume["Name"] not in used
    )


def _remove(swarm: SwarmClient, name: str) -> None:
    """The service, then its containers, stopped at once: Swarm leaves a removed job's
    containers behind (moby/moby#42789), holding the app's volumes, and a leftover's
    command (a release's migration, a ``run``) has no one waiting for it."""
    tasks = swarm.tasks(name)
    containers = {t["Status"].get("ContainerStatus", {}).get("ContainerID") for t in tasks}
    swarm.remove_service(name)
    for container in sorted(filter(None, containers)):
        with contextlib.suppress(CoreError):  # on another node: gone with its service
            swarm.remove_container(container)


def _sweep(
    swarm: SwarmClient,
    plane_id: str,
    now: float,
    after: float,
    dead: Callable[[Mapping[str, str]], bool | None],
) -> list[Orphan]:
    found = {s["Spec"]["Name"]: s for label in LABELS for s in swarm.services_labelled(label)}
    gone_now = leftovers(found.values(), plane_id, now, after, dead)
    for name in gone_now:
        _remove(swarm, name)
    orphans = [Orphan(name, _labels(found[name])) for name in gone_now]
    left = [s for name, s in found.items() if name not in gone_now]
    for volume in scratch_volumes(swarm.volumes_labelled(LABEL_DB), left, plane_id):
        try:
            swarm.remove_volume(volume)
        except CoreError as exc:  # its stopping container still holds it: the next round
            log.info("%s: kept for the next sweep: %s", volume, exc)
            continue
        orphans.append(Orphan(volume, {LABEL_DB: volume}))
    return orphans


def record(store: Store, server: str, orphan: Orphan, at: float) -> None:
    """What ``orphan`` belonged to, recorded as interrupted (blocking: the store)."""
    app, env = orphan.labels.get(LABEL_JOB_APP), orphan.labels.get(LABEL_JOB_ENV)
    why = f"interrupted: the shipbot process running it stopped; its {orphan.what} was removed"
    pid = orphan.owner_pid
    if orphan.labels.get(LABEL_JOB_KIND) == "release" and app and env and pid is not None:
        store.interrupt_stopped(app, env, pid, why)
    volume = orphan.labels.get(LABEL_HELPER)
    backup = backup_of(volume, store.running_backups()) if volume else None
    if backup:
        store.interrupt_backups(backup, at, why)
    interrupted(store, f"sweep {orphan.name} on {server}", why, app, env)


def interrupted(
    store: Store, command: str, why: str, app: str | None = None, env: str | None = None
) -> None:
    """The audit row of one thing the sweep found interrupted (blocking: the store)."""
    store.audit(
        user=SWEPT_BY, channel="", command=command, result=INTERRUPTED, app=app, env=env, detail=why
    )


async def sweep(plane: Plane, server: str, after: float = AFTER_SECONDS) -> list[str]:
    """Remove ``server``'s leftovers and record what they were doing; returns their names."""
    swarm = await plane.servers.client(server)
    now = plane.clock.time()
    dead = await asyncio.to_thread(judge, plane.store, now, ttl_seconds())
    orphans = await asyncio.to_thread(_sweep, swarm, plane.id, now, after, dead)
    for orphan in orphans:
        await asyncio.to_thread(record, plane.store, server, orphan, now)
    return [orphan.name for orphan in orphans]


def unheld_backups(store: Store, now: float, ttl: float) -> list[int]:
    """Running backup rows whose database lock nobody holds, or whose holder stopped
    beating for ``ttl``, recorded interrupted, each with an audit row (blocking: the
    store). Their process stopped: a backup holds the lock for as long as its row runs."""
    out: list[int] = []
    for name in sorted({row["database"] for row in store.running_backups()}):
        holder = store.lock(database_key(name))
        if holder is not None and holder["heartbeat_at"] >= now - ttl:
            continue
        why = "interrupted: the shipbot process running it stopped before it finished"
        ids = store.interrupt_backups(name, now, why)
        for backup_id in ids:
            interrupted(store, f"sweep backup {backup_id} of {name}", why)
        out += ids
    return out


async def sweep_all(
    plane: Plane, servers: Iterable[str], after: float = AFTER_SECONDS
) -> dict[str, list[str]]:
    """Every server's leftovers removed, each server on its own: server → names removed
    (a server that did not answer is logged and left for the next round). Backups whose
    process stopped are recorded interrupted last, whichever server they ran on (a volume
    backup's is recorded with its helper's removal first)."""
    out: dict[str, list[str]] = {}
    for server in servers:
        try:
            gone_now = await sweep(plane, server, after)
        except CoreError as exc:
            log.warning("%s: leftovers not swept: %s", server, exc)
            continue
        for name in gone_now:
            log.info("%s: removed %s, left behind by a shipbot that stopped", server, name)
        out[server] = gone_now
    now = plane.clock.time()
    for backup_id in await asyncio.to_thread(unheld_backups, plane.store, now, ttl_seconds()):
        log.info("backup %s recorded interrupted: the process running it stopped", backup_id)
    return out
