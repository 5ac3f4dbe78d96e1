"""The deploy room: apps, releases, rollouts, one-off runs, variables, policy, links."""

from __future__ import annotations

from commands.catalog import apps, deploys, jobs, links, policy, running, variables
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
        apps.AppsAdd,
        apps.AppsList,
        deploys.Deploy,
        deploys.Releases,
        deploys.Rollback,
        jobs.Run,
        links.LinkGrant,
        links.LinkList,
        links.LinkRevoke,
        policy.PolicyAccept,
        policy.PolicyDiff,
        policy.PolicyShow,
        running.Logs,
        running.Restart,
        running.Scale,
        running.Status,
        variables.EnvList,
        variables.EnvSet,
        variables.EnvUnset,
        variables.SecretSet,
    ),
)
