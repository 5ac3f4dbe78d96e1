"""A node that comes back gets the images: when a node of a swarm added over SSH turns
Ready again, the images of this control plane's services whose placement allows that node
(its apps, its databases, its proxy) are carried to it from the manager, as a deploy's
spread carries them (core/servers/remote.py), without waiting for the next deploy.

Ordering: Swarm may place a task on the node the moment it reports Ready, and shipbot can
reach the node's engine no sooner than that, so the image cannot be guaranteed to be there
first. What holds: the watcher acts on the node's event (at most ``alerts.check_seconds``
later when the event is lost), and a task Swarm placed before the image arrived is rejected
("No such image") and replaced by Swarm's restart policy; the replacement finds the image.
A node that returned while no ``shipbot serve`` ran gets the images at the next deploy.

``pick`` is pure: which (node, image) pairs to carry, from the nodes as seen before and
now and the services' specs.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from core.errors import CoreError
from core.names import LABEL_DB, LABEL_EDGE
from core.plane import Plane
from core.servers.nodes import node_of
from core.servers.urls import parse_url
from core.swarm import nodes as swarm_nodes

log = logging.getLogger("shipbot.alerts")


@dataclass(frozen=True)
class Carry:
    node: str  # the node's id
    hostname: str
    image: str


def image_of(service: Mapping[str, Any]) -> str:
    return service["Spec"]["TaskTemplate"]["ContainerSpec"]["Image"]


def constraints_of(service: Mapping[str, Any]) -> list[str]:
    placement = (service["Spec"]["TaskTemplate"].get("Placement")) or {}
    return list(placement.get("Constraints") or [])


def pick(
    before: set[str], nodes: Sequence[dict[str, Any]], services: Iterable[Mapping[str, Any]]
) -> list[Carry]:
    """For each node Ready now that was not before (``before``: the ids of the nodes that
    were Ready), every image of ``services`` whose placement lets a task run there, once."""
    back = [n for n in nodes if swarm_nodes.ready(n) and n["ID"] not in before]
    out: list[Carry] = []
    services = list(services)
    for node in sorted(back, key=swarm_nodes.hostname):
        images = sorted(
            {image_of(s) for s in services if swarm_nodes.allows(node, constraints_of(s))}
        )
        out += [Carry(node["ID"], swarm_nodes.hostname(node), image) for image in images]
    return out


class Rejoin:
    """One swarm's nodes as last seen by ``round``; the first round only looks."""

    def __init__(self, plane: Plane, server: str, owns: Callable[[Mapping[str, Any]], bool]):
        self.plane = plane
        self.server = server
        self.owns = owns  # this control plane's services (blocking: it reads the store)
        self.ready: set[str] | None = None  # ids of the nodes Ready at the last round

    async def round(self) -> list[str]:
        """Carry the images to the nodes back since the last round; the lines say what was
        done. A node that could not be given everything is tried again next round."""
        from core.servers.remote import login_for, ship

        plane = self.plane
        row = await plane.db.in_thread(lambda: plane.store.server(self.server))
        if row is None:  # the control plane's own engine: Swarm's nodes there pull
            return []
        swarm = await plane.servers.client(self.server)
        nodes = await asyncio.to_thread(swarm.nodes)
        now = {n["ID"] for n in nodes if swarm_nodes.ready(n)}
        if self.ready is None:
            self.ready = now
            return []
        before, self.ready = self.ready, now
        carries = pick(before, nodes, await asyncio.to_thread(self._services, swarm))
        members = await plane.db.in_thread(lambda: plane.store.servers(row["swarm"]))
        logins: dict[str, Any] = {}
        for member in members:
            node = await asyncio.to_thread(node_of, nodes, parse_url(member["url"]).host)
            if node is not None:
                logins[node["ID"]] = member
        lines: list[str] = []
        api = swarm.api  # type: ignore[attr-defined] (a DockerSwarm: remote servers are real)
        for carry in carries:
            member = logins.get(carry.node)
            if member is None or member["name"] == self.server:
                continue  # not added to shipbot (no login), or the manager that has them
            image_id = await asyncio.to_thread(swarm.image_id, carry.image)
            if image_id is None:  # a registry image: the node pulls it itself
                continue
            try:
                login = await asyncio.to_thread(login_for, plane, member)
                sent = await asyncio.to_thread(ship, api, login, carry.image, image_id)
            except CoreError as exc:
                self.ready.discard(carry.node)  # tried again next round
                lines.append(f"image {carry.image} not sent to {member['name']}: {exc}")
                continue
            verb = "sent" if sent else "already there"
            lines.append(
                f"node {carry.hostname} ({member['name']}) is back: image {carry.image} {verb}"
            )
        for line in lines:
            log.info("%s: %s", self.server, line)
        return lines

    def _services(self, swarm: Any) -> list[dict[str, Any]]:
        found = [
            *swarm.services(),
            *swarm.services_labelled(LABEL_DB),
            *swarm.services_labelled(LABEL_EDGE),
        ]
        return [s for s in found if self.owns(s)]
