"""Deploy: a resolved app.yml becomes a release, an image, and a service Swarm rolls out.

The release's status comes from the rollout's verdict alone: once the spec went to Swarm,
anything that stops us before the verdict (a lost engine, a cancelled task) leaves the
release ``unknown``, and reconcile reads the truth back from Swarm.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

from core.appspec import AppSpec
from core.deploy import build, fit, images, networks, record, release_job
from core.deploy.apply import (
    apply,
    check_domains,
    check_owner,
    deadline_seconds,
    force_update,
)
from core.deploy.plan import diff
from core.deploy.registry import is_pinned
from core.deploy.resolve import Resolved, source_tree
from core.deploy.seal import seal, unseal
from core.deploy.spec import service_name, service_spec, with_force_update
from core.deploy.swarm_objects import secret_ids, unmounted
from core.deploy.verdicts import (
    KEEP_RELEASES,
    VERDICT_WORDS,
    Seen,
    failure_title,
    rollback_failed_title,
    seen,
)
from core.edge.domains import wildcard_exclusions
from core.edge.labels import urls
from core.errors import BuildError, CoreError
from core.events import Event, Outcome, Progress
from core.ownership import stamped
from core.plane import Plane
from core.store import RELEASE_FAILED, RELEASE_SUPERSEDED, RELEASE_UNKNOWN, Release
from core.swarm import SwarmClient, rollout


async def plan(plane: Plane, resolved: Resolved) -> list[str]:
    """What deploying ``resolved`` would change, without building or touching the swarm."""
    swarm = await plane.servers.client(resolved.spec.server or plane.server)
    name, env = resolved.app.name, resolved.env
    current = await asyncio.to_thread(swarm.inspect_service, service_name(name, env))
    check_owner(current, name, env)
    check_domains(await asyncio.to_thread(swarm.services), resolved.spec, env)
    numbers = await plane.db.in_thread(lambda: plane.store.release_numbers(name))
    number = 1 + max(numbers, default=0)
    desired = service_spec(
        resolved.spec,
        env,
        number,
        images.release_image(resolved.spec, name, number, resolved.app_image),
        force_update=force_update(current),
        https_port=plane.edge.https_port,
        secret_ids=await asyncio.to_thread(secret_ids, swarm, resolved.spec),
        excluded=await wildcard_exclusions(plane.db, name, resolved.spec.domains),
    )
    fitted = await placed(swarm, resolved.spec)
    desired = fit.ordered(stamped(desired, plane.id), fitted.order)
    source = "build" if resolved.spec.build else f"image {resolved.spec.image}"
    commit = [f"commit {resolved.commit}"] if resolved.commit else []
    return [
        f"release {number} ({source})",
        *commit,
        *([fitted.note] if fitted.note and current else []),
        f"digest {resolved.digest}",
        *(
            [f"release command {release_job.shown(resolved.spec.release.command)}"]
            if resolved.spec.release
            else []
        ),
        *diff((current or {}).get("Spec"), desired, set(resolved.secret_keys)),
    ]


async def deploy(
    plane: Plane, resolved: Resolved, *, user: str, approved_by: str | None = None
) -> AsyncIterator[Event]:
    spec, env, name = resolved.spec, resolved.env, resolved.app.name
    server = spec.server or plane.server
    swarm = await plane.servers.client(server)
    current = await asyncio.to_thread(swarm.inspect_service, service_name(name, env))
    check_owner(current, name, env)
    check_domains(await asyncio.to_thread(swarm.services), spec, env)
    ids = await asyncio.to_thread(secret_ids, swarm, spec)  # missing ones: before a release
    fitted = await placed(swarm, spec)  # a placement that cannot hold it: before a release
    started = time.monotonic()
    release = await plane.db.in_thread(
        lambda: plane.store.new_release(
            app=name,
            env=env,
            image_for=lambda number: images.release_image(spec, name, number, resolved.app_image),
            source_ref=resolved.source_ref,
            deployed_by=user,
        )
    )
    async with record.operation(
        plane,
        swarm,
        app=name,
        env=env,
        kind="deploy",
        user=user,
        release=release.number,
        approved_by=approved_by,
        started=started,
    ) as op:
        yield Progress(f"release {release.number} of {name} ({env}) started by {user}")
        if note := unmounted(spec, ids):
            yield Progress(note)
        applied = False
        building = False  # a build under way: its failure gives the release number back
        registry_auth = None
        try:
            if resolved.app_image:
                assert spec.image is not None
                yield Progress(f"pulling {spec.image}")
                await images.fetch(plane, swarm, name, spec.image)
                await asyncio.to_thread(swarm.tag, spec.image, release.image)
                where = fit.where(spec)
                async for event in plane.servers.spread(server, release.image, where):  # as built
                    yield event
            elif is_pinned(release.image):
                yield Progress(f"pulling {release.image}")
                registry_auth = await images.fetch(plane, swarm, name, release.image)
            else:
                assert spec.build is not None
                builder = plane.build.server or server
                on = swarm if builder == server else await plane.servers.client(builder)
                async with source_tree(plane, resolved) as folder:
                    shown = resolved.commit[:12] if resolved.commit else str(folder)
                    building = True
                    async for event in build.build(on, folder, spec, release, shown, plane.build):
                        yield event
                    building = False
                if on is not swarm:  # built on the build server: carried to where it runs
                    async for event in build.carry(on, swarm, release.image, builder, server):
                        yield event
                # built on the server's manager: its other nodes get the image too
                where = fit.where(spec)
                async for event in plane.servers.spread(server, release.image, where):
                    yield event
            image_id = await asyncio.to_thread(swarm.image_id, release.image)
            current = await asyncio.to_thread(swarm.inspect_service, service_name(name, env))
            desired = service_spec(
                spec,
                env,
                release.number,
                release.image,
                force_update=force_update(current),
                https_port=plane.edge.https_port,
                secret_ids=ids,
                excluded=await wildcard_exclusions(plane.db, name, spec.domains),
            )
            desired = stamped(desired, plane.id)  # this control plane's, on a shared swarm
            desired = fit.ordered(desired, fitted.order)
            if fitted.note and current is not None:
                yield Progress(fitted.note)
            async for event in networks.prepare(plane, swarm, server, spec, env):
                yield event
            if spec.release is not None:  # before traffic moves: a failure stops us here
                async for event in release_job.release_phase(
                    swarm,
                    desired,
                    app=name,
                    env=env,
                    release=release.number,
                    argv=spec.release.command,
                    timeout_ns=spec.release.timeout,
                    secrets=[spec.env[key] for key in resolved.secret_keys if key in spec.env],
                    registry_auth=registry_auth,
                    clock=plane.clock,
                ):
                    yield event
            sealed = seal(desired, resolved.secret_keys, plane.vault.encrypt)
            await plane.db.in_thread(
                lambda: plane.store.update_release(release.id, spec=sealed, image_id=image_id)
            )
            live = await plane.db.in_thread(lambda: plane.store.live_release(name, env))
            verb = "creating" if current is None else f"updating ({fitted.order})"
            yield Progress(f"{verb} service {desired['Name']}")
            await plane.db.in_thread(
                lambda: plane.store.set_env_server(name, env, server, plane.clock.time())
            )
            applied = True
            async for event in op.watch(
                apply(
                    swarm,
                    current,
                    desired,
                    expect_update=current is not None,
                    deadline=deadline_seconds(spec),
                    registry_auth=registry_auth,
                    clock=plane.clock,
                )
            ):
                yield event
            result = op.result
            assert result is not None
        except CoreError as exc:
            if building and isinstance(exc, BuildError):  # nothing built: the number is unused
                await plane.db.in_thread(
                    lambda: plane.store.drop_unbuilt_release(release.id, op.run.id)
                )
                raise
            # once applied, the spec is with Swarm, which goes on without us: say so, never guess
            said, status = str(exc), RELEASE_UNKNOWN if applied else RELEASE_FAILED
            await plane.db.in_thread(
                lambda: plane.store.update_release(release.id, status=status, message=said)
            )
            if not applied:
                raise
            await op.finish("unknown", said)
            yield unknown_outcome(name, env, release, said)
            return
        except BaseException as exc:
            status = RELEASE_UNKNOWN if applied else RELEASE_FAILED
            said = repr(exc)
            await asyncio.shield(
                plane.db.in_thread(
                    lambda: plane.store.update_release(release.id, status=status, message=said)
                )
            )
            raise
        fields = {
            "app": name,
            "env": env,
            "release": str(release.number),
            "image": release.image,
            "replicas": str(spec.replicas),
        }
        if result.ok:
            await plane.db.in_thread(lambda: plane.store.mark_live(release.id))
            await op.finish("succeeded", f"release {release.number} is live")
            await asyncio.to_thread(images.prune, swarm, plane.store, name)
            fields["duration"] = op.duration()
            where = urls(spec, plane.edge.http_port, plane.edge.https_port)
            if where:
                fields["url"] = " ".join(where)
            outcome = Outcome(True, f"{name} release {release.number} is live on {env}", [], fields)
        else:
            reason, tail = await op.explain()
            await plane.db.in_thread(
                lambda: plane.store.update_release(
                    release.id, status=RELEASE_FAILED, message=reason
                )
            )
            back = rollout.Watch(recover(plane, swarm, desired["Name"], result, live, current))
            async for event in back.progress():
                yield event
            title, details = await told_after_failure(
                plane, swarm, release, result, live, back.verdict_if_any, fields
            )
            fields["duration"] = op.duration()
            await op.finish("failed", reason if "rollback" not in fields else title)
            outcome = Outcome(False, title, [f"why: {reason}", *details], fields, tail)
    # every record is written before the outcome is told: a reply that fails cannot undo it
    yield outcome


async def placed(swarm: SwarmClient, spec: AppSpec) -> fit.Fit:
    """The rollout order the swarm's Ready nodes allow (``max_per_node``; core/deploy/fit.py)."""
    if spec.placement.max_per_node is None:
        return fit.Fit(spec.rollout.order)
    return fit.fit(spec, await asyncio.to_thread(swarm.nodes))


def unknown_outcome(name: str, env: str, release: Release, why: str) -> Outcome:
    return Outcome(
        False,
        f"the outcome of {name} release {release.number} on {env} is unknown",
        [
            f"why: {why}",
            "Swarm carries on with the rollout by itself; `status` and `releases` read "
            "what it runs and record it",
        ],
        {"app": name, "env": env, "release": str(release.number)},
    )


async def recover(
    plane: Plane,
    swarm: SwarmClient,
    name: str,
    result: rollout.Converged,
    live: Release | None,
    current: dict | None,
) -> AsyncIterator[Event]:
    """Put the last good release back, unless Swarm already did; ends with the rollback's
    own verdict when it started one."""
    if result.state == "rolled_back":
        yield Progress("Swarm rolled the update back")
        return
    if current is None and live is None:
        yield Progress(f"removing {name}: its first release never became healthy")
        await asyncio.to_thread(swarm.remove_service, name)
        return
    if live is not None:
        missing = await gone(swarm, live)
        if missing:
            yield Progress(f"cannot roll back to release {live.number}: {missing}")
            yield rollout.Converged("failed", notes=[missing])
            return
        yield Progress(f"rolling back to release {live.number}")
        try:
            async for event in reapply(plane, swarm, live):
                yield event
        except CoreError as exc:  # its image gone, the engine refused: Swarm is read next
            yield rollout.Converged("failed", notes=[str(exc)])


async def told_after_failure(
    plane: Plane,
    swarm: SwarmClient,
    release: Release,
    result: rollout.Converged,
    live: Release | None,
    rollback: rollout.Converged | None,
    fields: dict[str, str],
) -> tuple[str, list[str]]:
    """The failure's title and details from what Swarm runs now, read after the recovery:
    "still runs release N" only when every desired task of N was just seen running. A
    rollback that did not bring N back is told as failed, N is no longer recorded live,
    and ``fields["rollback"]`` says so (the deploy command opens an alert for it)."""
    name = service_name(release.app, release.env)
    now = await look(plane, swarm, release.app, release.env)
    if live is None:
        title = failure_title(release.app, release.number, result.state, None)
        return title, ([now.words(name)] if now.release is not None else [])
    if now.runs(live.number):
        title = failure_title(release.app, release.number, result.state, live.number)
        return title, [f"{name} still runs release {live.number}: {now.count()}"]
    if rollback is not None and rollback.failed_task is not None:
        why, _ = await asyncio.to_thread(rollout.explain, swarm, rollback.failed_task)
    elif rollback is not None:
        why = "; ".join(rollback.notes) or VERDICT_WORDS[rollback.state]
    else:
        why = "Swarm's own rollback did not bring it back"
    message = f"not running: the rollback to it failed ({why})"
    await plane.db.in_thread(
        lambda: plane.store.update_release(live.id, status=RELEASE_SUPERSEDED, message=message)
    )
    fields["rollback"] = "failed"
    title = rollback_failed_title(release.app, release.number, result.state, live.number)
    return title, [f"rollback: {why}", now.words(name)]


async def look(plane: Plane, swarm: SwarmClient, app: str, env: str) -> Seen:
    """What Swarm runs for ``app`` in ``env`` right now."""
    name = service_name(app, env)
    service = await asyncio.to_thread(swarm.inspect_service, name)
    tasks = await asyncio.to_thread(swarm.tasks, name) if service else []
    kept = await plane.db.in_thread(lambda: plane.store.releases(app, env, KEEP_RELEASES * 2))
    return seen(service, tasks, {r.number: r.image for r in kept})


async def gone(swarm: SwarmClient, release: Release) -> str | None:
    """Why ``release`` cannot run again on ``swarm`` (its built image was pruned), or None.
    A registry image is pulled again instead."""
    if is_pinned(release.image) or await asyncio.to_thread(swarm.image_id, release.image):
        return None
    return (
        f"the image of release {release.number} ({release.image}) is gone from the engine; "
        f"only the last {KEEP_RELEASES} releases are kept"
    )


async def reapply(
    plane: Plane, swarm: SwarmClient, release: Release
) -> AsyncIterator[Progress | rollout.Converged]:
    """Apply a stored release's spec again and watch it (rollbacks and recoveries)."""
    name = release.spec["Name"]
    current = await asyncio.to_thread(swarm.inspect_service, name)
    check_owner(current, release.app, release.env)
    desired = with_force_update(unseal(release.spec, plane.vault.decrypt), force_update(current))
    desired = stamped(desired, plane.id)  # a release kept from before services carried it
    desired = await asyncio.to_thread(
        networks.confine, plane, swarm, desired, release.app, release.env
    )
    auth = None
    if is_pinned(release.image):
        auth = await asyncio.to_thread(images.login_for, plane, release.app, release.image)
    async for event in apply(
        swarm,
        current,
        desired,
        expect_update=current is not None,
        deadline=deadline_seconds(None) * 2,
        registry_auth=auth,
        clock=plane.clock,
    ):
        yield event
