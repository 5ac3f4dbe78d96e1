"""Servers added from chat, wired into the registry: a connector per name, their outages
shared with other processes through the store, and the image spreader that follows a build
on a remote swarm's manager."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

from core.events import Event, Progress
from core.plane import Plane
from core.servers.errors import ServerError
from core.servers.nodes import node_of
from core.servers.urls import parse_url
from core.store import Store
from core.store.connection import StoreBusy
from core.swarm import nodes as swarm_nodes
from core.swarm.outages import Recorded
from core.swarm.servers import Connector

if TYPE_CHECKING:
    from core.servers import ssh

MANAGER, WORKER = "manager", "worker"
LOAD_SECONDS = 600


def login_for(plane: Plane, row: dict[str, Any]) -> ssh.Login:
    """The Login of a recorded server: its key decrypted in memory, its host key pinned."""
    # Fabric, paramiko and the docker SDK load with the first remote server, not with
    # every command line
    from core.servers import keys, ssh
    from core.servers.hostkeys import HostKey

    key_row = plane.store.ssh_key(row["key"])
    if key_row is None:
        raise ServerError(
            f"server {row['name']} logs in with key {row['key']!r}, which is gone: "
            f"`ssh-key create {row['key']}` and put its public line on the host"
        )
    pkey = keys.load(plane.vault.decrypt(key_row["private"]))
    recorded = HostKey(row["host_key_kind"], row["host_key"])
    return ssh.Login(row["name"], parse_url(row["url"]), pkey, recorded)


class StoredOutages:
    """The servers' outages shared through the store (core/swarm/outages.py). A busy store
    never fails a connect: the outage is then this process's alone."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def recall(self, server: str) -> Recorded | None:
        try:
            row = self.store.server_outage(server)
        except StoreBusy:
            return None
        return Recorded(row["since"], row["error"], row["tried"]) if row else None

    def record(self, server: str, outage: Recorded) -> None:
        with contextlib.suppress(StoreBusy):
            self.store.record_outage(server, outage.since, outage.error, outage.tried)

    def clear(self, server: str) -> None:
        with contextlib.suppress(StoreBusy):
            self.store.clear_outage(server)


def install(plane: Plane) -> None:
    """Let the registry find servers added from chat, and spread images across them."""
    plane.servers.memory = StoredOutages(plane.store)
    plane.servers.lookup = lambda name: lookup(plane, name)
    plane.servers.added = lambda: managers(plane)
    plane.servers.spreader = lambda server, image, where: spread(plane, server, image, where)


def managers(plane: Plane) -> list[str]:
    """The servers added from chat that commands may name: each swarm's managers."""
    return [row["name"] for row in plane.store.servers() if row["role"] == MANAGER]


def lookup(plane: Plane, name: str) -> Connector | None:
    row = plane.store.server(name)
    if row is None:
        return None
    if row["role"] != MANAGER:
        raise ServerError(
            f"server {name} is a worker of swarm {row['swarm']}: deploy to a manager "
            f"(`server list`), e.g. `server: {row['swarm']}` in app.yml"
        )
    login = login_for(plane, row)
    from core.servers import docker_ssh

    return lambda: docker_ssh.connect(login)


async def spread(
    plane: Plane, server: str, image: str, where: swarm_nodes.Where | None = None
) -> AsyncIterator[Event]:
    """``docker save`` on the manager streamed into ``docker load`` on the other nodes of
    its swarm that shipbot added, skipped where the node has that image already.

    Only nodes Swarm reports Ready and that the placement lets tasks run on get it: a node
    that is down is named and skipped (Swarm places nothing there), and so is one shipbot
    cannot reach, as long as enough nodes hold the image for every replica."""
    from core.swarm.docker_api import engine_errors

    where = where or swarm_nodes.Where()
    row = await plane.db.in_thread(lambda: plane.store.server(server))
    if row is None:
        return
    swarm = await plane.servers.client(server)
    api = swarm.api  # type: ignore[attr-defined] (a DockerSwarm: remote servers are real)
    image_id = await asyncio.to_thread(swarm.image_id, image)
    if image_id is None:
        raise ServerError(f"image {image} is not on {server}'s manager, where it was built")
    members = await plane.db.in_thread(lambda: plane.store.servers(row["swarm"]))
    with engine_errors(f"listing the nodes of {server}'s swarm"):
        nodes = await asyncio.to_thread(api.nodes)
    if len(nodes) > len(members):
        yield Progress(
            f"{len(nodes) - len(members)} node(s) of {server}'s swarm were not added to shipbot "
            "and get no image: tasks placed there cannot start (`server add NAME URL --join "
            f"{row['swarm']}` adds one)"
        )
    holding: list[str] = []  # hostnames of the nodes tasks may use that have the image
    unreachable: list[str] = []
    for member in members:
        node = await asyncio.to_thread(node_of, nodes, parse_url(member["url"]).host)
        shown = (
            member["name"] if node is None else f"{member['name']} ({swarm_nodes.hostname(node)})"
        )
        if node is not None and not swarm_nodes.ready(node):
            state = (node.get("Status") or {}).get("State", "unknown")
            yield Progress(
                f"image {image} not sent to {shown}: Swarm reports the node {state}; skipped "
                "(`shipbot serve` sends it when the node is back, else the next deploy)"
            )
            continue
        if node is not None and not swarm_nodes.allows(node, where.constraints):
            yield Progress(f"image {image} not sent to {shown}: the placement puts no task there")
            continue
        if member["name"] == server:
            holding.append(shown)
            continue
        login = await asyncio.to_thread(login_for, plane, member)
        try:
            shipped = await asyncio.to_thread(ship, api, login, image, image_id)
        except ServerError as exc:
            unreachable.append(shown)
            yield Progress(f"image {image} not sent to {shown}: {exc}; skipped")
            continue
        holding.append(shown)
        verb = "sent" if shipped else "already there"
        yield Progress(f"image {image} on {member['name']}: {verb}")
    if unreachable and len(holding) < where.nodes_needed:
        raise ServerError(
            f"image {image} could not reach {', '.join(unreachable)}, and the nodes that have "
            f"it ({', '.join(holding) or 'none'}) cannot hold every replica: bring the node "
            "back, or widen the placement; nothing was changed"
        )


def ship(api: Any, login: ssh.Login, image: str, image_id: str) -> bool:
    """``image`` from the manager (``api``) into the engine of ``login``'s node; False when
    that node has it already (by id). Blocking."""
    from core.servers import ssh
    from core.swarm.docker_api import engine_errors

    with ssh.connect(login) as (conn, _pin):
        have = ssh.run(conn, ["docker", "image", "inspect", "--format", "{{.Id}}", image])
        if have.exited == 0 and have.stdout.strip() == image_id:
            return False
        channel = conn.client.get_transport().open_session()
        channel.settimeout(LOAD_SECONDS)
        with contextlib.closing(channel):
            channel.exec_command("docker load -q")
            with engine_errors(f"reading {image} from the manager"):
                for chunk in api.get_image(image, chunk_size=1 << 20):
                    channel.sendall(chunk)
            channel.shutdown_write()
            status = channel.recv_exit_status()
            err = channel.recv_stderr(4096) if channel.recv_stderr_ready() else b""
        if status != 0:
            raise ServerError(
                f"loading {image} on {login.name} failed (exit {status}): "
                f"{err.decode(errors='replace').strip()[-300:]}"
            )
        return True
