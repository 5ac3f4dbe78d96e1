"""Rollback: a kept release's stored spec, applied again and watched."""

from __future__ import annotations

from collections.abc import AsyncIterator

from core.deploy import images, record
from core.deploy.deploy import gone, look, reapply
from core.deploy.registry import is_pinned
from core.deploy.spec import service_name
from core.deploy.verdicts import KEEP_RELEASES, rollback_to
from core.errors import DeployError
from core.events import Event, Outcome, Progress
from core.plane import Plane
from core.policy import gate as policy_gate
from core.servers.where import server_of
from core.store import RELEASE_SUPERSEDED, Release


async def target(plane: Plane, name: str, env: str, number: int | None) -> Release:
    live = await plane.db.in_thread(lambda: plane.store.live_release(name, env))
    releases = await plane.db.in_thread(
        lambda: plane.store.releases(name, env, limit=KEEP_RELEASES + 1)
    )
    if number is not None and all(r.number != number for r in releases):
        extra = await plane.db.in_thread(lambda: plane.store.release(name, env, number))
        releases = [*releases, *([extra] if extra else [])]
    chosen = rollback_to(name, env, live, number, releases)
    # checked here, so a rollback that waits for approval is refused before it is asked
    await policy_gate.check_release(plane, name, env, chosen.number, chosen.spec)
    return chosen


async def rollback(
    plane: Plane,
    name: str,
    env: str,
    *,
    user: str,
    number: int | None = None,
    approved_by: str | None = None,
) -> AsyncIterator[Event]:
    live = await plane.db.in_thread(lambda: plane.store.live_release(name, env))
    chosen = await target(plane, name, env, number)
    swarm = await plane.servers.client(await server_of(plane, name, env))
    if is_pinned(chosen.image):  # a registry image: pulled again (and access checked again)
        await images.fetch(plane, swarm, name, chosen.image)
    elif missing := await gone(swarm, chosen):
        raise DeployError(missing)
    async with record.operation(
        plane,
        swarm,
        app=name,
        env=env,
        kind="rollback",
        user=user,
        release=chosen.number,
        approved_by=approved_by,
    ) as op:
        yield Progress(f"rolling {name} ({env}) back to release {chosen.number}")
        async for event in op.watch(reapply(plane, swarm, chosen)):
            yield event
        fields = {
            "app": name,
            "env": env,
            "release": str(chosen.number),
            "image": chosen.image,
            "duration": op.duration(),
        }
        if op.ok:
            await plane.db.in_thread(
                lambda: plane.store.mark_live(chosen.id, f"made live again by {user} (rollback)")
            )
            await op.finish("succeeded")
            outcome = Outcome(
                True, f"{name} is back on release {chosen.number} ({env})", [], fields
            )
        else:
            reason, tail = await op.explain()
            await op.finish("failed", reason)
            now = await look(plane, swarm, name, env)
            # "still runs" only when Swarm was just seen running all of it
            if live is not None and now.runs(live.number):
                title = f"rollback of {name} to release {chosen.number} failed; it still runs "
                title += f"release {live.number}"
            else:
                title = f"rollback of {name} to release {chosen.number} failed"
                if live is not None:
                    message = f"not running after a failed rollback to {chosen.number}"
                    await plane.db.in_thread(
                        lambda: plane.store.update_release(
                            live.id, status=RELEASE_SUPERSEDED, message=message
                        )
                    )
            service = service_name(name, env)
            outcome = Outcome(False, title, [f"why: {reason}", now.words(service)], fields, tail)
    yield outcome
