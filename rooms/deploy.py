"""The deploy room: apps, releases, rollouts, one-off runs, variables, policy, links."""

from __future__ import annotations

from core.config import BuildConfig
from core.store.schema import deploy as schema_deploy
from core.store.schema import versions
from rooms.capability import Capability

ROOM = Capability(
    name="deploy",
    sections={"build": BuildConfig, "host_paths": None},
    tables=(
        "apps",
        "releases",
        "deployments",
        "variables",
        "registry_logins",
        "policies",
        "links",
        "guard_rounds",
    ),  # fmt: skip
    migrations=versions(schema_deploy),
    commands=(
        "apps add",
        "apps list",
        "deploy",
        "releases",
        "rollback",
        "run",
        "link grant",
        "link list",
        "link revoke",
        "policy accept",
        "policy diff",
        "policy",
        "logs",
        "restart",
        "scale",
        "status",
        "env list",
        "env set",
        "env unset",
        "secret set",
    ),
)
