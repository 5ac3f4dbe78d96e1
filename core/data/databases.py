"""Managed databases: create, read, attach, remove; the URLs an attached app receives.

Builders live in ``core.data.db_spec``; these functions apply them through the plane's
swarm client and remember each database (credentials encrypted by the vault) in the store.
Backups and verification find a database here: ``load``/``get`` give its kind, service,
volume and credentials, ``running_container`` the container of its running task.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass
from typing import Any

from core import apps
from core.config import DataConfig
from core.data import db_networks, db_spec, homes
from core.data.db_spec import Credentials, Database
from core.errors import CoreError
from core.events import Event, Outcome, Progress
from core.names import LABEL_PLANE
from core.ownership import foreign, stamped
from core.plane import Plane
from core.servers import where
from core.swarm import SwarmClient, VolumeInUse, rollout, running_tasks

READY_SECONDS = 180.0  # first start: the image's initdb, then the health check


class DatabaseError(CoreError):
    """A database cannot be created, found, attached or removed; the message says why."""


class ForeignDatabase(DatabaseError):
    """The swarm's service or volume of that name is another control plane's."""


@dataclass(frozen=True)
class DatabaseStatus:
    database: Database
    attachments: list[tuple[str, str]]  # (app, environment)
    service: dict[str, Any] | None  # None: the service is gone
    tasks: list[dict[str, Any]]
    volume: dict[str, Any] | None  # None: the volume is gone (or not made yet)

    @property
    def running(self) -> int:
        return len(running_tasks(self.tasks))


def _from_row(plane: Plane, row: dict[str, Any]) -> Database:
    creds = Credentials(**json.loads(plane.vault.decrypt(row["credentials"])))
    return Database(
        name=row["name"],
        kind=row["kind"],
        version=row["version"],
        image=row["image"],
        credentials=creds,
        created_by=row["created_by"],
        created_at=row["created_at"],
        server=homes.row_server(plane, row),
    )


def load(plane: Plane, name: str) -> Database:
    """The database ``name`` with its credentials (blocking: call it off the event loop)."""
    row = plane.store.database(name)
    if row is None:
        raise DatabaseError(f"no database {name!r}: `db list` shows them")
    return _from_row(plane, row)


async def get(plane: Plane, name: str) -> Database:
    return await asyncio.to_thread(load, plane, name)


def load_all(plane: Plane) -> list[Database]:
    return [_from_row(plane, row) for row in plane.store.databases()]


async def running_container(plane: Plane, name: str) -> str | None:
    """The container id of the database's running task (on its server's manager), if any."""
    swarm = await homes.database_swarm(plane, name)
    service = db_spec.service_name(name)
    if foreign(await asyncio.to_thread(swarm.inspect_service, service), plane.id):
        return None
    tasks = running_tasks(await asyncio.to_thread(swarm.tasks, service))
    for task in tasks:
        container = (task["Status"].get("ContainerStatus") or {}).get("ContainerID")
        if container:
            return str(container)
    return None


def _checked(kind: str, name: str, version: str) -> None:
    try:
        db_spec.check_kind(kind)
        db_spec.check_name(name)
        db_spec.check_version(version)
    except ValueError as exc:
        raise DatabaseError(str(exc)) from exc


def _refuse_taken(plane: Plane, swarm: SwarmClient, db: Database) -> None:
    if plane.store.database(db.name) is not None:
        raise DatabaseError(f"database {db.name} exists already: `db status {db.name}`")
    service = swarm.inspect_service(db.service)
    if service is not None:
        other = foreign(service, plane.id)
        whose = " (another control plane's, on this shared swarm)" if other else ""
        raise DatabaseError(
            f"a service {db.service} runs already{whose}; pick another database name"
        )
    volume = swarm.inspect_volume(db.volume)
    if foreign(volume, plane.id):
        raise DatabaseError(
            f"the volume {db.volume} is another control plane's (on this shared swarm): "
            "pick another database name"
        )
    if volume is not None:
        raise DatabaseError(
            f"the volume {db.volume} holds data kept from an earlier database {db.name} "
            "(its credentials are gone with it): pick another name, or remove the volume "
            f"on the server (`docker volume rm {db.volume}`)"
        )


async def create(
    plane: Plane,
    config: DataConfig,
    kind: str,
    name: str,
    version: str | None,
    *,
    user: str,
    server: str | None = None,
) -> AsyncIterator[Event]:
    """A new database service on its own volume, with fresh credentials, on ``server``
    (the control plane's own by default); waits until its health check passes."""
    version = version or db_spec.DEFAULT_VERSIONS.get(kind, "")
    _checked(kind, name, version)
    server, swarm = await homes.for_create(plane, server, f"database {name}")
    db = Database(
        name=name,
        kind=kind,
        version=version,
        image=db_spec.image_for(config, kind, version),
        credentials=db_spec.new_credentials(kind, name),
        created_by=user,
        created_at=plane.clock.time(),
        server=server,
    )
    await asyncio.to_thread(_refuse_taken, plane, swarm, db)
    if await asyncio.to_thread(swarm.image_id, db.image) is None:
        yield Progress(f"pulling {db.image}")
        await asyncio.to_thread(swarm.pull, db.image)
    sealed = plane.vault.encrypt(json.dumps(dataclasses.asdict(db.credentials)))
    row = {
        "name": db.name,
        "kind": db.kind,
        "version": db.version,
        "image": db.image,
        "server": server,
        "credentials": sealed,
        "created_by": user,
        "created_at": db.created_at,
    }
    if not await plane.db.in_thread(lambda: plane.store.add_database(row)):
        raise DatabaseError(f"database {db.name} exists already: `db status {db.name}`")
    yield Progress(
        f"creating service {db.service} ({db.image}) on volume {db.volume} on server {server}"
    )
    own = db_spec.network_name(db.name)
    try:
        labels = {db_spec.LABEL_DB: db.name, LABEL_PLANE: plane.id}
        await asyncio.to_thread(swarm.ensure_network, own, labels)
        spec = stamped(db_spec.service_spec(db, [own]), plane.id)
        await asyncio.to_thread(swarm.create_service, spec)
    except CoreError:
        await plane.db.in_thread(
            lambda: plane.store.remove_database(db.name)
        )  # nothing runs: nothing to remember
        raise
    async for event in _ready(plane, swarm, db):
        yield event


async def _ready(plane: Plane, swarm: SwarmClient, db: Database) -> AsyncIterator[Event]:
    target = rollout.Target(db.service, db.image, 1, 0, False, None)
    verdict = None
    async for item in rollout.wait(swarm, target, READY_SECONDS, plane.clock):
        if isinstance(item, Progress):
            yield item
        else:
            verdict = item
    assert verdict is not None
    fields = {"service": db.service, "image": db.image, "volume": db.volume, "server": db.server}
    if verdict.ok:
        yield Outcome(
            True,
            f"{db.kind} database {db.name} is up",
            [
                f"reachable as {db.service}:{db.port} from the app environments it is "
                "attached to (on their networks), and from nothing else",
                f"attach it with `db attach {db.name} APP [--env ENV]`, then list it under "
                f"`databases:` in the app's app.yml: its deploys there get {db.variable}",
            ],
            fields,
        )
        return
    why, tail = await asyncio.to_thread(rollout.explain, swarm, verdict.failed_task)
    yield Outcome(
        False,
        f"{db.kind} database {db.name} did not become healthy: {why}",
        [f"its service {db.service} stays; `db status {db.name}`, or `db remove {db.name}`"],
        fields,
        tail,
    )


async def status(plane: Plane, name: str) -> DatabaseStatus:
    db = await get(plane, name)
    swarm = await where.client(plane, db.server, f"database {name}")

    def read() -> DatabaseStatus:
        service, volume = swarm.inspect_service(db.service), swarm.inspect_volume(db.volume)
        _refuse_foreign(plane, db, service, volume)
        tasks = swarm.tasks(db.service) if service is not None else []
        return DatabaseStatus(db, attached(plane, name), service, tasks, volume)

    return await asyncio.to_thread(read)


def attached(plane: Plane, name: str) -> list[tuple[str, str]]:
    """The (app, environment) pairs an admin attached database ``name`` to: the app
    environments whose deploys get its URL (blocking)."""
    return plane.store.database_attachments(name)


async def attach(plane: Plane, name: str, app: str, env: str, *, user: str) -> bool:
    """Let ``app`` in ``env`` name the database in app.yml, and put the database on that
    app environment's network; False when it already could."""
    await get(plane, name)
    await asyncio.to_thread(apps.get_app, plane.store, app)
    runs_on = await plane.db.in_thread(lambda: plane.store.env_server(app, env))
    if runs_on is not None:  # deployed already: where it runs now (else its deploy checks)
        await asyncio.to_thread(db_networks.refuse_other_swarm, plane, name, app, env, runs_on)
    done = await plane.db.in_thread(
        lambda: plane.store.attach_database(name, app, env, user, plane.clock.time())
    )
    await _sync_networks(plane, name)
    return done


async def detach(plane: Plane, name: str, app: str, env: str) -> bool:
    """The database leaves the app environment's network now; its next deploy naming it
    there is refused."""
    await get(plane, name)
    done = await plane.db.in_thread(lambda: plane.store.detach_database(name, app, env))
    await _sync_networks(plane, name)
    return done


async def _sync_networks(plane: Plane, name: str) -> None:
    swarm = await homes.database_swarm(plane, name)
    await asyncio.to_thread(db_networks.sync, plane, swarm, name)


async def remove(plane: Plane, name: str, *, delete_data: bool) -> AsyncIterator[Event]:
    """Remove the service; the volume stays unless ``delete_data``. Refused while any app
    is attached (its next deploy would lose its URL)."""
    db = await get(plane, name)
    pairs = await asyncio.to_thread(attached, plane, name)
    if pairs:
        raise DatabaseError(
            f"database {name} is attached to {shown(pairs)}: detach it first "
            f"(`db detach {name} {pairs[0][0]} --env {pairs[0][1]}`); nothing was changed"
        )
    swarm = await where.client(plane, db.server, f"database {name}")
    found = await asyncio.to_thread(
        lambda: (swarm.inspect_service(db.service), swarm.inspect_volume(db.volume))
    )
    _refuse_foreign(plane, db, *found)
    yield Progress(f"removing service {db.service}")
    await asyncio.to_thread(swarm.remove_service, db.service)
    await plane.db.in_thread(lambda: plane.store.remove_database(name))
    await rollout.remove_network(swarm, db_spec.network_name(name), plane.clock)
    if not delete_data:
        yield Outcome(
            True,
            f"database {name} removed; its data stays on volume {db.volume}",
            [f"`docker volume rm {db.volume}` on server {db.server} frees it"],
        )
        return
    yield Progress(f"removing volume {db.volume}")
    await _remove_volume(plane, swarm, db.volume)
    yield Outcome(True, f"database {name} removed with its data (volume {db.volume})")


def _refuse_foreign(
    plane: Plane, db: Database, service: dict[str, Any] | None, volume: dict[str, Any] | None
) -> None:
    """The swarm's ``db-NAME`` (or its volume) was made by another control plane sharing
    the swarm: it is not this database, and nothing here reads or changes it."""
    for what, found in ((f"service {db.service}", service), (f"volume {db.volume}", volume)):
        other = foreign(found, plane.id)
        if other is not None:
            raise ForeignDatabase(
                f"the {what} on this swarm is another control plane's ({LABEL_PLANE}={other}), "
                f"not this one's database {db.name}: nothing was read or changed"
            )


async def _remove_volume(plane: Plane, swarm: SwarmClient, volume: str) -> None:
    try:
        await rollout.remove_volume(swarm, volume, plane.clock)
    except VolumeInUse as exc:
        raise DatabaseError(f"the service is gone but {exc}") from exc


def holding(plane: Plane, names: Iterable[str]) -> list[str]:
    """Those of ``names`` that are a database's service or volume (an app named ``db``
    would otherwise make them), blocking."""
    owned = set()
    for row in plane.store.databases():
        owned |= {db_spec.service_name(row["name"]), db_spec.volume_name(row["name"])}
    return [name for name in names if name in owned]


def shown(pairs: Iterable[tuple[str, str]]) -> str:
    """Attachments in words: ``shop (production), shop (staging)``."""
    return ", ".join(f"{app} ({env})" for app, env in pairs)


def urls_for(plane: Plane, app: str, env: str, names: Iterable[str]) -> dict[str, str]:
    """The variables a deploy of ``app`` in ``env`` gets from the databases its app.yml
    names (blocking).

    Only databases an admin attached to ``app`` in ``env`` resolve: naming another app's
    database, or one attached to another environment of the app (production's, in
    staging), is refused, since its URL carries that database's password.
    """
    out: dict[str, str] = {}
    given_by: dict[str, str] = {}
    for name in names:
        row = plane.store.database(name)
        if row is None or (app, env) not in attached(plane, name):
            raise DatabaseError(
                f"{app}'s app.yml names database {name!r} in {env}, which is not attached "
                f"to {app} ({env}): an admin runs `db attach {name} {app} --env {env}`; "
                "nothing was changed"
            )
        db = _from_row(plane, row)
        if db.variable in out:
            raise DatabaseError(
                f"{app}: databases {given_by[db.variable]} and {name} would both set "
                f"{db.variable}; name one of them"
            )
        out[db.variable], given_by[db.variable] = db.url, name
    return out


def variables_of(plane: Plane, app: str, env: str, names: Iterable[str]) -> dict[str, str]:
    """What ``env list`` says of the variables a deploy of ``app`` in ``env`` gets from the
    databases its app.yml names: variable → where from (blocking). The values are URLs
    that carry passwords, so they are never read here."""
    out: dict[str, str] = {}
    for name in names:
        row = plane.store.database(name)
        if row is None:
            continue  # a deploy refuses it, and says so
        pairs = attached(plane, name)
        note = "" if (app, env) in pairs else f"; not attached to {app} ({env}): deploys refuse it"
        out[db_spec.url_variable(row["kind"])] = f"database {name}{note}"
    return out
