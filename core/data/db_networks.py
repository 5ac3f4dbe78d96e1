"""Which overlay networks a managed database sits on: its own, and those of the app
environments it serves, no other, so an app reaches only the databases an admin attached
to it.

``served`` lists the (app, environment) pairs a database serves: the app environments an
admin attached it to (``db attach NAME APP --env E``) that were deployed. Joining or leaving a
network is a service update of the database (stop-first: its task restarts), made only
when the set changes: on attach, on detach, and on the first deploy of an environment
that names it.

Upgrade: a database still on shipbot's shared network from before keeps it while an app
environment it serves has not been deployed onto its own network yet, then leaves it.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterable
from typing import Any

from core.data import db_spec, homes
from core.errors import DeployError
from core.events import Progress
from core.names import LABEL_PLANE, NETWORK, network_labels, network_name, service_name
from core.ownership import foreign
from core.plane import Plane
from core.swarm import SwarmClient, rollout

RESTART_SECONDS = 180.0  # as a first start: the health check passes again


def served(plane: Plane, name: str) -> list[tuple[str, str]]:
    """The (app, env) pairs database ``name`` serves (blocking): attached by an admin, and
    deployed already (a first deploy joins through ``sync``'s ``extra``)."""
    deployed = {(app, env) for app, env, _ in plane.store.env_server_rows()}
    return sorted(set(plane.store.database_attachments(name)) & deployed)


def swarm_of(plane: Plane, server: str) -> str:
    """The swarm a server belongs to, by its first manager's name (blocking); the control
    plane's own engine and any server not added from chat are their own swarm."""
    row = plane.store.server(server)
    return row["swarm"] if row is not None else server


def shares_swarm(plane: Plane, name: str, server: str) -> bool:
    """Whether database ``name`` lives in the swarm of ``server`` (blocking)."""
    row = plane.store.database(name)
    home = homes.row_server(plane, row)
    return swarm_of(plane, home) == swarm_of(plane, server)


def refuse_other_swarm(plane: Plane, name: str, app: str, env: str, server: str) -> None:
    """An app environment on ``server`` may use database ``name`` only within one swarm
    (blocking): an overlay network does not span swarms, so an app elsewhere would deploy
    and then fail to resolve the database's address."""
    row = plane.store.database(name)
    if row is None:
        return
    home = row["server"]
    if swarm_of(plane, home) == swarm_of(plane, server):
        return
    raise DeployError(
        f"{app} ({env}) runs on server {server}, and database {name} lives on server {home}: "
        "an overlay network does not span swarms, so the app could not resolve the "
        f"database's address. Deploy {app} ({env}) to {home} (app.yml's server:), or give "
        "it a database it can reach; nothing was changed"
    )


def _on_own_network(swarm: SwarmClient, app: str, env: str, names: dict[str, str]) -> bool:
    service = swarm.inspect_service(service_name(app, env))
    if service is None:
        return True
    targets = service["Spec"]["TaskTemplate"].get("Networks") or []
    return network_name(app, env) in {names.get(n["Target"], n["Target"]) for n in targets}


def sync(
    plane: Plane, swarm: SwarmClient, name: str, extra: Iterable[tuple[str, str]] = ()
) -> list[str]:
    """Put database ``name``'s service on the networks of what it serves (and ``extra``
    pairs, such as an environment deploying for the first time); blocking. Returns the
    networks it joined, or [] when nothing changed (or it has no service here: none, or
    another control plane's of the same name)."""
    current = swarm.inspect_service(db_spec.service_name(name))
    if current is None or foreign(current, plane.id):
        return []
    deploying = set(extra)  # on their own network once this deploy applies
    pairs = sorted({*served(plane, name), *deploying})
    names = swarm.network_names()
    spec: dict[str, Any] = current["Spec"]
    template = spec["TaskTemplate"]
    now = [names.get(n["Target"], n["Target"]) for n in template.get("Networks") or []]
    wanted = [db_spec.network_name(name), *(network_name(app, env) for app, env in pairs)]
    moved = [p in deploying or _on_own_network(swarm, *p, names) for p in pairs]
    if NETWORK in now and not all(moved):
        wanted.append(NETWORK)
    if sorted(now) == sorted(wanted):
        return []
    own = {db_spec.LABEL_DB: name, LABEL_PLANE: plane.id}
    swarm.ensure_network(db_spec.network_name(name), own)
    for app, env in pairs:
        swarm.ensure_network(network_name(app, env), network_labels(app, env, plane.id))
    networks = [{"Target": network} for network in sorted(wanted)]
    swarm.update_service({**spec, "TaskTemplate": {**template, "Networks": networks}})
    return sorted(set(wanted) - set(now))


async def join(
    plane: Plane, swarm: SwarmClient, name: str, pair: tuple[str, str]
) -> AsyncIterator[Progress]:
    """Database ``name`` on the network of ``pair`` too (a deploy naming it), and healthy
    again before the deploy goes on; nothing when it is there already."""
    service = db_spec.service_name(name)
    before = await asyncio.to_thread(swarm.inspect_service, service)
    joined = await asyncio.to_thread(sync, plane, swarm, name, [pair])
    if before is None or not joined:
        return
    yield Progress(f"database {name} joined network {', '.join(joined)} (it restarts)")
    template = before["Spec"]["TaskTemplate"]
    target = rollout.Target(
        service,
        template["ContainerSpec"]["Image"],
        1,
        template.get("ForceUpdate", 0),
        True,
        (before.get("UpdateStatus") or {}).get("StartedAt"),
    )
    async for item in rollout.wait(swarm, target, RESTART_SECONDS, plane.clock):
        if isinstance(item, rollout.Converged) and not item.ok:
            raise DeployError(
                f"database {name} did not come back after joining {', '.join(joined)} "
                f"({item.state}): `db status {name}`"
            )
