"""Scale and restart: the running service's own spec, changed a little, applied and watched."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from typing import Any

from core.deploy import record
from core.deploy.apply import BASE_DEADLINE_SECONDS, apply, check_owner
from core.deploy.spec import service_name, with_force_update, with_replicas
from core.errors import CoreError, DeployError
from core.events import Event, Outcome, Progress
from core.plane import Plane
from core.servers.where import server_of

MAX_REPLICAS = 100


async def scale(
    plane: Plane, name: str, env: str, replicas: int, *, user: str
) -> AsyncIterator[Event]:
    if not 0 <= replicas <= MAX_REPLICAS:
        raise CoreError(f"replicas must be between 0 and {MAX_REPLICAS}, got {replicas}")
    change = _adjust(
        plane, name, env, user, "scale", lambda spec: with_replicas(spec, replicas), False
    )
    async with contextlib.aclosing(change) as events:
        async for event in events:
            yield event


async def restart(plane: Plane, name: str, env: str, *, user: str) -> AsyncIterator[Event]:
    def bump(spec: dict[str, Any]) -> dict[str, Any]:
        return with_force_update(spec, spec["TaskTemplate"].get("ForceUpdate", 0) + 1)

    async with contextlib.aclosing(
        _adjust(plane, name, env, user, "restart", bump, True)
    ) as events:
        async for event in events:
            yield event


async def _adjust(
    plane: Plane,
    name: str,
    env: str,
    user: str,
    kind: str,
    change: Callable[[dict[str, Any]], dict[str, Any]],
    expect_update: bool,
) -> AsyncIterator[Event]:
    live = await plane.db.in_thread(lambda: plane.store.live_release(name, env))
    if live is None:
        raise DeployError(f"{name} has no live release on {env}: deploy it first")
    swarm = await plane.servers.client(await server_of(plane, name, env))
    svc = service_name(name, env)
    current = await asyncio.to_thread(swarm.inspect_service, svc)
    if current is None:
        raise DeployError(f"service {svc} is not on the swarm: deploy {name} again")
    check_owner(current, name, env)
    desired = change(current["Spec"])
    replicas = desired["Mode"]["Replicated"]["Replicas"]
    async with record.operation(
        plane, swarm, app=name, env=env, kind=kind, user=user, release=live.number
    ) as op:
        yield Progress(f"{kind} of {svc}: {replicas} replicas")
        deadline = BASE_DEADLINE_SECONDS * 2
        async for event in op.watch(
            apply(
                swarm,
                current,
                desired,
                expect_update=expect_update,
                deadline=deadline,
                clock=plane.clock,
            )
        ):
            yield event
        fields = {
            "app": name,
            "env": env,
            "release": str(live.number),
            "replicas": str(replicas),
            "duration": op.duration(),
        }
        if op.ok:
            await op.finish("succeeded")
            title = (
                f"{name} ({env}) scaled to {replicas}"
                if kind == "scale"
                else f"{name} ({env}) restarted, {replicas} tasks replaced"
            )
            details = []
            stored = live.spec.get("Mode", {}).get("Replicated", {}).get("Replicas")
            if kind == "scale" and stored != replicas:
                details.append("app.yml still sets its own count: the next deploy applies it")
            if kind == "scale" and live.spec:  # the store says what runs: drift compares it
                await plane.db.in_thread(
                    lambda: plane.store.update_release(
                        live.id, spec=with_replicas(live.spec, replicas)
                    )
                )
            outcome = Outcome(True, title, details, fields)
        else:
            reason, tail = await op.explain()
            await op.finish("failed", reason)
            outcome = Outcome(
                False,
                f"{kind} of {name} ({env}) did not converge",
                [f"why: {reason}"],
                fields,
                tail,
            )
    yield outcome
