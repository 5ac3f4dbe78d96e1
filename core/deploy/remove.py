"""`apps remove`: undeploy one environment of an app, or every one (its previews too) and
unregister it. Each environment is undeployed where it runs (core/deploy/undeploy.py);
the reply says what was seen removed and what was kept.

Decided: a removed environment's releases are deleted, not marked (their images are gone,
so none could be rolled back to); the audit keeps every deploy's history.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass

from core.appspec import DEFAULT_ENV, AppConfig, Approval
from core.config import DnsConfig
from core.deploy.undeploy import Tally, spec_volumes, undeploy
from core.errors import CoreError, DeployError
from core.events import Event, Outcome, Progress
from core.names import LABEL_ENV
from core.plane import Plane
from core.policy import gate as policy_gate
from core.servers.where import server_of

MAX_RELEASES = 100_000


@dataclass(frozen=True)
class Scope:
    """What a removal covers: the app's environments it undeploys, and the app.yml read."""

    app: str
    envs: tuple[str, ...]
    config: AppConfig | None
    whole: bool  # unregister the app too


async def scope(plane: Plane, app: str, env: str | None, config: AppConfig | None) -> Scope:
    """The environments ``app`` has (app.yml's, those deployed, its previews, and those
    Swarm runs for it here); ``env`` alone when named, or ``DeployError`` if it has none."""
    known = [DEFAULT_ENV, *(config.environments if config else [])]
    known += [
        release.env
        for release in await plane.db.in_thread(
            lambda: plane.store.releases(app, None, limit=MAX_RELEASES)
        )
    ]
    known += [row["env"] for row in await plane.db.in_thread(lambda: plane.store.previews(app))]
    known += [
        e for a, e, _ in await plane.db.in_thread(lambda: plane.store.env_server_rows()) if a == app
    ]
    swarm = await plane.servers.client(plane.server)
    for service in await asyncio.to_thread(swarm.services, app):
        env_label = ((service.get("Spec") or {}).get("Labels") or {}).get(LABEL_ENV)
        if env_label:
            known.append(env_label)
    envs = tuple(dict.fromkeys(known))
    if env is None:
        return Scope(app, envs, config, whole=True)
    if env not in envs:
        raise DeployError(
            f"{app} has no environment {env!r} (its environments: {', '.join(envs)}); "
            "nothing was changed"
        )
    return Scope(app, (env,), config, whole=False)


async def approval(plane: Plane, scope: Scope) -> Approval | None:
    """The strictest approval any environment it covers asks for (None: none asks)."""
    rule = None
    for env in scope.envs:
        offered = scope.config.for_env(env).approval if scope.config else None
        rule = policy_gate.tighten(rule, await policy_gate.approval(plane, scope.app, env, offered))
    return rule


async def remove(
    plane: Plane, scope: Scope, *, dns: DnsConfig | None, delete_volumes: bool, user: str
) -> AsyncIterator[Event]:
    app, tally, records = scope.app, Tally(), 0
    for env in scope.envs:
        async with contextlib.aclosing(
            _environment(plane, scope, env, tally, dns, delete_volumes)
        ) as events:
            async for event in events:
                yield event
        records += sum(tally.records.values())
    if scope.whole:
        yield Progress(f"unregistering {app}")
        gone = await asyncio.to_thread(plane.store.forget_app, app, f"{app} removed by {user}")
        records += sum(gone.values())
        title = f"{app} removed and unregistered"
    else:
        title = f"{app} ({scope.envs[0]}) removed; the app stays registered"
    details = [
        *(f"removed {what}" for what in tally.removed),
        *(f"kept {what}" for what in tally.kept),
        f"{records} records deleted; the audit keeps the history",
    ]
    yield Outcome(True, title, details, {"app": app, "envs": ", ".join(scope.envs)})


async def _environment(
    plane: Plane,
    scope: Scope,
    env: str,
    tally: Tally,
    dns: DnsConfig | None,
    delete_volumes: bool,
) -> AsyncIterator[Event]:
    app = scope.app
    server = await server_of(plane, app, env)
    swarm = await plane.servers.client(server)
    releases = await plane.db.in_thread(lambda: plane.store.releases(app, env, limit=MAX_RELEASES))
    others = set()
    if not scope.whole:  # a registry image another environment still runs stays
        others = {
            r.image
            for r in await plane.db.in_thread(
                lambda: plane.store.releases(app, None, limit=MAX_RELEASES)
            )
            if r.env != env
        }
    volumes = {v for release in releases for v in spec_volumes(release.spec)}
    steps = undeploy(
        plane,
        swarm,
        app,
        env,
        tally,
        delete_volumes=delete_volumes,
        volumes=volumes,
        images={r.image for r in releases} - others,
        dns=dns,
        here=server == plane.server,
    )
    try:
        async with contextlib.aclosing(steps) as events:
            async for event in events:
                yield event
    except CoreError as exc:
        raise DeployError(f"removing {app} ({env}) on {server}: {exc}") from exc
    tally.records = await asyncio.to_thread(plane.store.undeploy_environment, app, env)
