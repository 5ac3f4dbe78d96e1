"""The one apply-and-watch path every change takes: post a service spec, then watch Swarm
converge (or roll back) with a deadline. Deploy, rollback, scale and restart all end here."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

from core.appspec import AppSpec
from core.clock import SYSTEM, Clock
from core.edge.certs import routed_domains
from core.errors import DeployError
from core.events import Progress
from core.names import LABEL_APP, LABEL_ENV
from core.swarm import SwarmClient, comparable_image, rollout

BASE_DEADLINE_SECONDS = 60.0


def deadline_seconds(spec: AppSpec | None) -> float:
    """Time allowed for a rollout: a base plus what the health check needs, twice."""
    check = spec.healthcheck if spec else None
    if check is None:
        return BASE_DEADLINE_SECONDS
    one_verdict = check.start_period + (check.interval + check.timeout) * (check.retries + 1)
    return BASE_DEADLINE_SECONDS + 2 * one_verdict / 1e9


def check_owner(current: dict[str, Any] | None, app: str, env: str) -> None:
    """Only a service shipbot made for this app and environment may be changed by it."""
    if current is None:
        return
    labels = current.get("Spec", {}).get("Labels") or {}
    owner = (labels.get(LABEL_APP), labels.get(LABEL_ENV))
    if owner != (app, env):
        name = current.get("Spec", {}).get("Name", "?")
        whose = f"app {owner[0]!r} ({owner[1]})" if owner[0] else "no shipbot app"
        raise DeployError(
            f"service {name} belongs to {whose}, not {app} ({env}); nothing was changed"
        )


def check_domains(services: list[dict[str, Any]], spec: AppSpec, env: str) -> None:
    """A domain routed to one app and environment cannot be claimed by another: Traefik
    would split or steal its traffic."""
    mine = set(spec.domains)
    for routed in routed_domains(services):
        if routed.domain in mine and (routed.app, routed.env) != (spec.name, env):
            raise DeployError(
                f"{routed.domain} is already routed to {routed.app} ({routed.env}); a domain "
                "belongs to one app and environment, nothing was changed"
            )


def force_update(service: dict[str, Any] | None) -> int:
    """The service's ForceUpdate counter (a restart bumps it; every spec we post keeps it)."""
    return (service or {}).get("Spec", {}).get("TaskTemplate", {}).get("ForceUpdate", 0)


def target_of(
    desired: dict[str, Any], current: dict[str, Any] | None, expect_update: bool
) -> rollout.Target:
    template = desired["TaskTemplate"]
    return rollout.Target(
        name=desired["Name"],
        image=comparable_image(template["ContainerSpec"]["Image"]),
        replicas=desired["Mode"]["Replicated"]["Replicas"],
        force_update=template.get("ForceUpdate", 0),
        expect_update=expect_update,
        previous_update=rollout.update_started(current),
    )


async def apply(
    swarm: SwarmClient,
    current: dict[str, Any] | None,
    desired: dict[str, Any],
    *,
    expect_update: bool,
    deadline: float,
    registry_auth: dict[str, str] | None = None,
    clock: Clock = SYSTEM,
) -> AsyncIterator[Progress | rollout.Converged]:
    """Create or update the service, then yield progress and one ``Converged``.

    ``current`` is the service as inspected before ``desired`` was built (None: create it).
    ``expect_update``: the change touches the task template, so Swarm runs a rolling update.
    ``registry_auth``: the credentials Swarm's nodes pull a registry image with.
    """
    target = target_of(desired, current, expect_update)
    if current is None:
        await asyncio.to_thread(swarm.create_service, desired, registry_auth)
    else:
        await asyncio.to_thread(swarm.update_service, desired, registry_auth)
    async for event in rollout.wait(swarm, target, deadline, clock):
        yield event
