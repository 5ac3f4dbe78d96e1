"""The fake swarm's watch side: nodes, the event stream (scripted with ``emit``, ``oom``)
and what each node uses (set ``usage``), mixed into ``FakeSwarm``."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any


class FakeWatch:
    """Needs the ``FakeSwarm`` it is mixed into: its clock, services, tasks, containers,
    ``_enter`` (faults), ``_tasks_of`` and ``_set_state`` (the orchestrator's)."""

    node_list: list[dict[str, Any]]
    event_log: list[dict[str, Any]]
    usage: dict[str, dict[str, float]]
    now: float
    containers: dict[str, dict[str, Any]]
    _services: dict[str, Any]

    def ready_nodes(self) -> int:
        return sum(1 for n in self.node_list if n["Status"]["State"] == "ready")

    def nodes(self) -> list[dict[str, Any]]:
        self._enter("nodes")
        return copy.deepcopy(self.node_list)

    def events(self, since: int | None) -> FakeEvents:
        """The events emitted so far from ``since`` on; the stream then ends, as a dropped
        connection does (the watcher reconnects)."""
        self._enter("events")
        return FakeEvents([e for e in self.event_log if since is None or e["timeNano"] >= since])

    def node_usage(self, image: str) -> dict[str, dict[str, float]]:
        self._enter("node_usage")
        return copy.deepcopy(self.usage)

    def emit(self, kind: str, action: str, actor: str, **attributes: str) -> dict[str, Any]:
        """An engine event now (on the fake's clock), as the engine shapes them."""
        self.now += 0.001
        event = {
            "Type": kind,
            "Action": action,
            "Actor": {"ID": actor, "Attributes": dict(attributes)},
            "time": int(self.now),
            "timeNano": int(self.now * 1e9),
        }
        self.event_log.append(event)
        return event

    def oom(self, service: str) -> dict[str, Any]:
        """The kernel kills a running task of ``service`` for memory: its container exits
        137 and the engine says ``oom`` then ``die``; Swarm starts a replacement."""
        found = self._services[service]
        task = next(t for t in self._tasks_of(found) if t["Status"]["State"] == "running")
        container_id = task["Status"]["ContainerStatus"]["ContainerID"]
        labels = {"com.docker.swarm.service.name": service, "com.docker.swarm.task.id": task["ID"]}
        event = self.emit("container", "oom", container_id, **labels)
        self.containers[container_id]["State"].update(Status="exited", ExitCode=137, OOMKilled=True)
        task["DesiredState"] = "shutdown"
        task["Status"]["ContainerStatus"]["ExitCode"] = 137
        self._set_state(task, "failed", "started", Err="task: non-zero exit (137)")
        self.emit("container", "die", container_id, exitCode="137", **labels)
        return event


@dataclass
class FakeEvents:
    events: list[dict[str, Any]]
    closed: bool = False

    def __iter__(self) -> Iterator[dict[str, Any]]:
        for event in self.events:
            if self.closed:
                return
            yield copy.deepcopy(event)

    def close(self) -> None:
        self.closed = True


def fake_node(node_id: str, hostname: str, role: str = "manager") -> dict[str, Any]:
    """A ready, active node as ``GET /nodes`` shows it."""
    return {
        "ID": node_id,
        "Description": {"Hostname": hostname},
        "Spec": {"Role": role, "Availability": "active"},
        "Status": {"State": "ready", "Addr": "127.0.0.1"},
    }
