"""The ids of the Swarm secrets app.yml mounts, read from the engine before a spec is built."""

from __future__ import annotations

from core.appspec import AppSpec
from core.errors import DeployError
from core.swarm import SwarmClient


def secret_ids(swarm: SwarmClient, spec: AppSpec) -> dict[str, str]:
    """Each secret's id; an optional secret the swarm lacks has none (it is not mounted)."""
    ids = {}
    for secret in spec.swarm_secrets:
        found = swarm.object_id("secret", secret.name)
        if found is None and secret.optional:
            continue
        if found is None:
            raise DeployError(
                f"{spec.name}: app.yml mounts the Swarm secret {secret.name}, which does not "
                f"exist: create it first (printf %s VALUE | docker secret create {secret.name} -)"
                "; nothing was changed"
            )
        ids[secret.name] = found
    return ids


def unmounted(spec: AppSpec, ids: dict[str, str]) -> str | None:
    """What the deploy says of the optional secrets the swarm does not have."""
    left = [s.name for s in spec.swarm_secrets if s.name not in ids]
    if not left:
        return None
    return (
        f"optional Swarm secret(s) not found, so not mounted: {', '.join(left)} "
        "(`docker secret create NAME -` on the server and deploy again to mount one)"
    )
