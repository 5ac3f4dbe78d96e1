"""Overlay networks in the in-memory fake swarm, as the engine keeps them: a network with a
service on it cannot be removed.

``networks`` maps each network's name to its labels; the fake's ids are the names.
"""

from __future__ import annotations

from typing import Any

from core.errors import DeployError
from core.swarm import NetworkInUse
from core.swarm.testing.orchestrator import LIVE, Orchestrator


class FakeNetworks(Orchestrator):
    def __init__(self) -> None:
        super().__init__()
        self.networks: dict[str, dict[str, str]] = {}

    def ensure_network(self, name: str = "shipbot", labels: dict[str, str] | None = None) -> None:
        self._enter("ensure_network")
        self.networks.setdefault(name, {"shipbot.managed": "true", **(labels or {})})

    def remove_network(self, name: str) -> None:
        """As the engine: refused for good while a service's spec names the network
        (``DeployError``), refused for now while tasks still on it stop (``NetworkInUse``)."""
        self._enter("remove_network")
        users = [s.spec["Name"] for s in self._services.values() if name in networks_of(s.spec)]
        if users:
            raise DeployError(
                f"removing network {name}: the Docker engine said: rpc error: code = "
                f"FailedPrecondition desc = network {name} is in use by service {users[0]}"
            )
        attached = [
            t
            for t in self._tasks
            if t["Status"]["State"] in LIVE and name in networks_of({"TaskTemplate": t["Spec"]})
        ]
        if attached:
            raise NetworkInUse(
                f"removing network {name}: the Docker engine said: error while removing "
                f"network: network {name} id {name} has active endpoints"
            )
        self.networks.pop(name, None)

    def inspect_network(self, name: str) -> dict[str, Any] | None:
        self._enter("inspect_network")
        labels = self.networks.get(name)
        return None if labels is None else {"Name": name, "Id": name, "Labels": dict(labels)}

    def network_names(self) -> dict[str, str]:
        self._enter("network_names")
        return {name: name for name in self.networks}


def networks_of(spec: dict[str, Any]) -> list[str]:
    return [n["Target"] for n in spec["TaskTemplate"].get("Networks") or []]
