"""Records made true to Swarm: releases whose outcome nobody saw are read back from what
Swarm runs (the service's release label and its tasks' images)."""

from __future__ import annotations

import asyncio
from typing import Any

from core.deploy.spec import LABEL_RELEASE, service_name
from core.deploy.status import task_image
from core.errors import CoreError
from core.plane import Plane
from core.servers.where import server_of
from core.store import RELEASE_FAILED, RELEASE_UNKNOWN, Release
from core.swarm import SwarmClient, running_tasks

SETTLED = {None, "completed", "rollback_completed", "paused", "rollback_paused"}


def verdict(
    release: Release, service: dict[str, Any] | None, tasks: list[dict[str, Any]]
) -> str | None:
    """``live``, ``failed``, or None while Swarm is still deciding."""
    if service is None:
        return "failed"
    update = (service.get("UpdateStatus") or {}).get("State")
    if update not in SETTLED:
        return None
    labelled = service["Spec"].get("Labels", {}).get(LABEL_RELEASE) == str(release.number)
    desired = service["Spec"].get("Mode", {}).get("Replicated", {}).get("Replicas", 0)
    ours = [t for t in running_tasks(tasks) if task_image(t) == release.image]
    if labelled and len(ours) == desired and update in (None, "completed"):
        return "live"
    return "failed"


def _look(swarm: SwarmClient, release: Release) -> tuple[dict[str, Any] | None, list[dict]]:
    name = service_name(release.app, release.env)
    service = swarm.inspect_service(name)
    return service, (swarm.tasks(name) if service else [])


async def _record(plane: Plane, release: Release, outcome: str | None) -> None:
    """The store told what Swarm said of ``release``: live, failed, or (None) still unknown."""
    if outcome == "live":
        await plane.db.in_thread(
            lambda: plane.store.mark_live(release.id, "live, as read back from Swarm")
        )
    elif outcome == "failed":
        await plane.db.in_thread(
            lambda: plane.store.update_release(
                release.id, status=RELEASE_FAILED, message="Swarm does not run it (read back)"
            )
        )


async def reconcile(plane: Plane, app: str | None = None) -> list[tuple[Release, str]]:
    """Settle every ``unknown`` release (of ``app``) from Swarm; returns what was decided."""
    unknown = await plane.db.in_thread(
        lambda: plane.store.releases_with_status(RELEASE_UNKNOWN, app)
    )
    if not unknown:
        return []
    decided = []
    away: dict[str, CoreError] = {}
    answered = False
    for release in unknown:
        server = await server_of(plane, release.app, release.env)
        if server in away:
            continue
        try:  # a server away keeps its releases unknown; the others are still read back
            swarm = await plane.servers.client(server)
            service, tasks = await asyncio.to_thread(_look, swarm, release)
        except CoreError as exc:
            away[server] = exc
            continue
        answered = True
        outcome = verdict(release, service, tasks)
        await _record(plane, release, outcome)
        if outcome:
            decided.append((release, outcome))
    if away and not answered:
        raise next(iter(away.values()))  # no server answered: the caller says why
    return decided
