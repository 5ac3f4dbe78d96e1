"""Overlay networks through the docker SDK: the part of ``DockerSwarm`` that makes, lists
and removes them (attachable, so jobs' tasks join them too, labelled as shipbot's)."""

from __future__ import annotations

import contextlib
from typing import Any

import docker
import docker.errors

from core.errors import DeployError
from core.names import LABEL_MANAGED, NETWORK
from core.swarm import NetworkInUse
from core.swarm.docker_errors import engine_errors


class DockerNetworks:
    api: docker.APIClient

    def ensure_network(self, name: str = NETWORK, labels: dict[str, str] | None = None) -> None:
        with engine_errors(f"creating the overlay network {name}"):
            if any(net["Name"] == name for net in self.api.networks(names=[name])):
                return
            with contextlib.suppress(docker.errors.APIError):  # created meanwhile elsewhere
                self.api.create_network(
                    name,
                    driver="overlay",
                    attachable=True,
                    labels={LABEL_MANAGED: "true", **(labels or {})},
                )

    def remove_network(self, name: str) -> None:
        """Gone afterwards (absent is fine); ``NetworkInUse`` while a task is still on it."""
        try:
            with (
                engine_errors(f"removing network {name}"),
                contextlib.suppress(docker.errors.NotFound),
            ):
                self.api.remove_network(name)
        except DeployError as exc:
            if isinstance(exc.__cause__, docker.errors.APIError) and (
                exc.__cause__.status_code in (403, 409)
            ):
                raise NetworkInUse(str(exc)) from exc.__cause__
            raise

    def inspect_network(self, name: str) -> dict[str, Any] | None:
        with engine_errors(f"inspecting network {name}"):
            found = [net for net in self.api.networks(names=[name]) if net["Name"] == name]
            return found[0] if found else None

    def network_names(self) -> dict[str, str]:
        with engine_errors("listing networks"):
            return {net["Id"]: net["Name"] for net in self.api.networks()}
