"""The ids of the Swarm secrets app.yml mounts, read from the engine before a spec is built."""

from __future__ import annotations

from core.appspec import AppSpec
from core.errors import DeployError
from core.swarm import SwarmClient


def secret_ids(swarm: SwarmClient, spec: AppSpec) -> dict[str, str]:
    ids = {}
    for secret in spec.swarm_secrets:
        found = swarm.object_id("secret", secret.name)
        if found is None:
            raise DeployError(
                f"{spec.name}: app.yml mounts the Swarm secret {secret.name}, which does not "
                f"exist: create it first (printf %s VALUE | docker secret create {secret.name} -)"
                "; nothing was changed"
            )
        ids[secret.name] = found
    return ids
