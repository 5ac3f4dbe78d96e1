"""Commands run once as Swarm jobs on an app's image: the release phase of a deploy, and
one-off ``run`` commands on the live release.

The release phase runs app.yml's ``release:`` argv on the NEW image, with the spec the new
tasks will get (env, secrets, databases, volumes, network), after the image exists and
before the service is touched: a non-zero exit or a timeout stops the deploy there, with
the command's output quoted, and the old release keeps serving. Output is masked with the
app's secrets before it leaves this module.
"""

from __future__ import annotations

import asyncio
import shlex
import time
from collections.abc import AsyncIterator, Sequence
from typing import Any

from core.apps import get_app
from core.appspec.jobs import DEFAULT_TIMEOUT_NS
from core.clock import SYSTEM, Clock
from core.deploy import images, networks
from core.deploy.registry import is_pinned
from core.deploy.seal import SEALED, unseal
from core.errors import BuildError, CoreError
from core.events import Event, Outcome, Progress
from core.names import LABEL_PLANE
from core.plane import Plane
from core.secrets import Masker, secret_values
from core.servers.where import server_of
from core.store import Release
from core.swarm import SwarmClient
from core.swarm.jobs import JobResult, job_labels, job_name, job_spec, run_job

QUOTED_LINES = 20


class ReleaseCommandFailed(BuildError):
    """The release command failed: the deploy stops before the service changes; like a
    failed build, the error carries the command's last lines for the chat to quote."""


def shown(argv: Sequence[str]) -> str:
    return shlex.join(argv)


async def release_phase(
    swarm: SwarmClient,
    desired: dict[str, Any],
    *,
    app: str,
    env: str,
    release: int,
    argv: Sequence[str],
    timeout_ns: int,
    secrets: Sequence[str],
    registry_auth: dict[str, str] | None,
    clock: Clock = SYSTEM,
) -> AsyncIterator[Event]:
    """Run ``argv`` once as ``desired``'s tasks would run; raise ``ReleaseCommandFailed``
    unless it exits 0 in time. ``secrets``: the values its output must not show."""
    spec = job_spec(
        desired,
        job_name(desired["Name"], "release", release),
        argv,
        job_labels(app, env, "release"),
    )
    yield Progress(f"running the release command `{shown(argv)}` on release {release}")
    masker = Masker(secrets)  # not the registry login: a masked echo would confirm a guess
    result: JobResult | None = None
    stream = run_job(
        swarm,
        spec,
        timeout=timeout_ns / 1e9,
        mask=masker,
        source="release",
        registry_auth=registry_auth,
        clock=clock,
    )
    async for item in stream:
        if isinstance(item, JobResult):
            result = item
        else:
            yield item
    assert result is not None
    if not result.ok:
        raise ReleaseCommandFailed(
            f"the release command `{shown(argv)}` of {app} failed: {result.summary()}. "
            f"Release {release} was not deployed; what ran before keeps serving",
            result.lines[-QUOTED_LINES:] or ["(the command printed nothing)"],
        )
    yield Progress(f"the release command finished in {result.seconds:.1f}s (exit 0)")


def sealed_values(sealed: dict[str, Any], unsealed: dict[str, Any]) -> list[str]:
    """The values a release's stored spec keeps sealed: its secrets and database URLs."""
    pairs = zip(
        sealed["TaskTemplate"]["ContainerSpec"].get("Env", []),
        unsealed["TaskTemplate"]["ContainerSpec"].get("Env", []),
        strict=True,
    )
    out = []
    for kept, clear in pairs:
        if kept.partition("=")[2].startswith(SEALED):
            out.append(clear.partition("=")[2])
    return out


async def run_once(
    plane: Plane, app: str, env: str, argv: Sequence[str], *, user: str
) -> AsyncIterator[Event]:
    """``run APP -- argv``: argv once, on the live release's image and spec."""
    await asyncio.to_thread(get_app, plane.store, app)
    live: Release | None = await plane.db.in_thread(lambda: plane.store.live_release(app, env))
    if live is None or not live.spec:
        raise CoreError(f"{app} has no live release in {env}: deploy it first (`deploy {app}`)")
    # where the live release runs: its environment's server (core/servers/where.py)
    swarm = await plane.servers.client(await server_of(plane, app, env))
    desired = await asyncio.to_thread(
        networks.confine, plane, swarm, unseal(live.spec, plane.vault.decrypt), app, env
    )
    auth = None
    if is_pinned(live.image):
        auth = await asyncio.to_thread(images.login_for, plane, app, live.image)
    secrets = sealed_values(live.spec, desired)
    secrets += await asyncio.to_thread(secret_values, plane.store, plane.vault, app, env)
    number = time.time_ns() // 1_000_000
    labels = {**job_labels(app, env, "run"), LABEL_PLANE: plane.id}  # swept if left behind
    spec = job_spec(desired, job_name(desired["Name"], "run", number), argv, labels)
    yield Progress(f"running `{shown(argv)}` on {app} release {live.number} ({env}) for {user}")
    result: JobResult | None = None
    stream = run_job(
        swarm,
        spec,
        timeout=DEFAULT_TIMEOUT_NS / 1e9,
        mask=Masker(secrets),
        source="run",
        registry_auth=auth,
        clock=plane.clock,
    )
    async for item in stream:
        if isinstance(item, JobResult):
            result = item
        else:
            yield item
    assert result is not None
    fields = {
        "app": app,
        "env": env,
        "release": str(live.number),
        "exit code": "none" if result.exit_code is None else str(result.exit_code),
        "duration": f"{result.seconds:.1f}s",
    }
    title = f"`{shown(argv)}` on {app} ({env}): {result.summary()}"
    details = [] if result.ok or not result.error else [f"why: {result.error}"]
    yield Outcome(result.ok, title, details, fields)
