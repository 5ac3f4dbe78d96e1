"""Watching a service converge after a create or update, and explaining a failure.

Swarm itself performs the rolling update (start-first, roll back on failure); this module
only observes it, with a deadline, and digs out *why* a task failed: the health check's
own output and the container's last log lines.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from core.clock import SYSTEM, Clock
from core.errors import CoreError, DeployError, EngineUnavailable
from core.events import Progress
from core.swarm import NetworkInUse, SwarmClient, VolumeInUse, comparable_image
from core.swarm import nodes as swarm_nodes

POLL_SECONDS = 0.2
# One failed look at the engine is not a failed rollout: look again after these pauses
# (doubling), for as long as the deadline allows.
RETRY_FIRST_SECONDS = 0.2
RETRY_MAX_SECONDS = 2.0
FAILED_STATES = {"failed", "rejected"}
# A task that ended this way failed only if its container was unhealthy: a server that
# exits 0 on SIGTERM (gunicorn does) leaves its task ``complete`` when Swarm stops it.
STOPPED_STATES = {"complete", "shutdown"}
TIMED_OUT = ("timed out", "timeout", "deadline exceeded")


@dataclass(frozen=True)
class Target:
    """What the service should look like once converged."""

    name: str
    image: str
    replicas: int
    force_update: int
    expect_update: bool  # a TaskTemplate change: Swarm runs (and reports) a rolling update
    previous_update: str | None  # UpdateStatus.StartedAt before our change, to tell ours apart


@dataclass
class Converged:
    """The end of a wait. ``state``: converged, rolled_back, paused, failed, timeout,
    unplaced (a timeout with a task Swarm found no node for) or node_lost (a timeout with
    tasks of the new release on nodes that went down: ``lost_nodes``, their hostnames)."""

    state: str
    failed_task: dict[str, Any] | None = None
    notes: list[str] = field(default_factory=list)
    lost_nodes: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return self.state == "converged"


class Watch:
    """Relays a wait's progress to the caller and keeps its verdict."""

    def __init__(self, events: AsyncIterator[Progress | Converged]) -> None:
        self._events = events
        self._verdict: Converged | None = None

    async def progress(self) -> AsyncIterator[Progress]:
        async for event in self._events:
            if isinstance(event, Converged):
                self._verdict = event
            else:
                yield event

    @property
    def verdict(self) -> Converged:
        assert self._verdict is not None, "progress() was not run to its end"
        return self._verdict

    @property
    def verdict_if_any(self) -> Converged | None:
        """The verdict, or None when the stream ended without one."""
        return self._verdict


def update_started(service: dict[str, Any] | None) -> str | None:
    return ((service or {}).get("UpdateStatus") or {}).get("StartedAt")


def _task_image(task: dict[str, Any]) -> str:
    return comparable_image(task["Spec"]["ContainerSpec"]["Image"])


def _ts(value: str | None) -> float:
    """Engine timestamps (nanosecond RFC 3339) to epoch seconds, on the engine's clock."""
    if not value:
        return 0.0
    head, _, frac = value.rstrip("Z").partition(".")
    return datetime.fromisoformat(head + "+00:00").timestamp() + float(f"0.{frac or 0}")


@dataclass(frozen=True)
class Observation:
    state: str | None  # of *our* update; None when Swarm runs none (create, scale)
    good: int  # tasks running the target
    converged: bool  # exactly the target's tasks are running, nothing else is
    failed: list[dict[str, Any]]  # tasks of the target that failed since ``since``, newest first
    updated_at: float  # when the service spec last changed, on the engine's clock
    # tasks of the target Swarm could not put on any node ("no suitable node …")
    unplaced: list[dict[str, Any]] = field(default_factory=list)


def transient(exc: BaseException) -> bool:
    """An engine that stopped answering, or a call of it that timed out: worth a retry."""
    if isinstance(exc, EngineUnavailable):
        return True
    return isinstance(exc, DeployError) and any(word in str(exc).lower() for word in TIMED_OUT)


def _unhealthy(swarm: SwarmClient, task: dict[str, Any], seen: dict[str, bool]) -> bool:
    """Its container ended unhealthy; ``seen`` keeps the answer (a stopped one is final)."""
    container_id = (task["Status"].get("ContainerStatus") or {}).get("ContainerID")
    if not container_id:
        return False
    if container_id not in seen:
        container = swarm.inspect_container(container_id) or {}
        health = (container.get("State") or {}).get("Health") or {}
        seen[container_id] = health.get("Status") == "unhealthy"
    return seen[container_id]


def observe(
    swarm: SwarmClient,
    target: Target,
    since: float | None = None,
    health: dict[str, bool] | None = None,
) -> Observation:
    """One look at the service. ``since``: count failures from then (default: spec change);
    ``health``: what earlier looks learned of stopped containers' health."""
    health = {} if health is None else health
    service = swarm.inspect_service(target.name) or {}
    status = service.get("UpdateStatus") or {}
    ours = status.get("StartedAt") and status.get("StartedAt") != target.previous_update
    state = status.get("State") if ours else None
    updated_at = _ts(service.get("UpdatedAt"))
    since = (updated_at if since is None else since) - 1.0
    tasks = swarm.tasks(target.name)
    desired = [t for t in tasks if t["DesiredState"] == "running"]
    good = [
        t
        for t in desired
        if t["Status"]["State"] == "running"
        and _task_image(t) == target.image
        and t["Spec"].get("ForceUpdate", 0) == target.force_update
    ]
    failed = [
        t
        for t in tasks
        if _task_image(t) == target.image
        and _ts(t.get("CreatedAt")) >= since
        and (
            t["Status"]["State"] in FAILED_STATES
            or (t["Status"]["State"] in STOPPED_STATES and _unhealthy(swarm, t, health))
        )
    ]
    failed.sort(key=lambda t: _ts(t.get("UpdatedAt")), reverse=True)
    if len(good) > target.replicas:  # a node went down: Swarm still lists its tasks running
        down = {n["ID"] for n in swarm.nodes() if not swarm_nodes.ready(n)}
        good = [t for t in good if t.get("NodeID") not in down]
    converged = len(good) == target.replicas == len(desired)
    unplaced = [
        t
        for t in desired
        if _task_image(t) == target.image
        and t["Status"]["State"] == "pending"
        and t["Status"].get("Err")
    ]
    return Observation(state, len(good), converged, failed, updated_at, unplaced)


async def wait(
    swarm: SwarmClient, target: Target, deadline_seconds: float, clock: Clock = SYSTEM
) -> AsyncIterator[Progress | Converged]:
    """Yield progress as tasks come up, then one ``Converged``; the deadline and the pauses
    are on ``clock``'s time (the fast tier passes its fake swarm's).

    A look that fails for a transient reason is tried again with backoff; only an engine
    still away at the deadline raises (the caller cannot know the outcome then).
    """
    deadline = clock.monotonic() + deadline_seconds
    last: tuple[str | None, int] | None = None
    since: float | None = None  # our change; a rollback by Swarm changes the spec again
    health: dict[str, bool] = {}
    retry, away = RETRY_FIRST_SECONDS, False
    while True:
        try:
            seen = await asyncio.to_thread(observe, swarm, target, since, health)
        except CoreError as exc:
            left = deadline - clock.monotonic()
            if not transient(exc) or left <= 0:
                raise
            if not away:
                away = True
                yield Progress(f"lost the engine for a moment ({exc}); looking again")
            await clock.sleep(min(retry, left))
            retry = min(retry * 2, RETRY_MAX_SECONDS)
            continue
        retry, away = RETRY_FIRST_SECONDS, False
        since = seen.updated_at if since is None else since
        state, good, failed = seen.state, seen.good, seen.failed
        if (state, good) != last:
            last = (state, good)
            what = f", update {state.replace('_', ' ')}" if state else ""
            yield Progress(f"{good}/{target.replicas} tasks up on {target.image}{what}")
        if state == "rollback_completed":
            yield Converged("rolled_back", failed[0] if failed else None)
            return
        if state in {"paused", "rollback_paused"}:
            yield Converged("paused", failed[0] if failed else None)
            return
        done = seen.converged and (state == "completed" if target.expect_update else True)
        if done:
            yield Converged("converged")
            return
        if not target.expect_update and len(failed) > target.replicas:
            yield Converged("failed", failed[0])
            return
        if clock.monotonic() > deadline:
            if not failed and seen.unplaced:  # why it never started: Swarm's own words
                yield Converged("unplaced", seen.unplaced[0])
                return
            lost = await asyncio.to_thread(lost_nodes, swarm, target)
            if lost:  # Swarm's update waits for tasks it can no longer see
                yield Converged("node_lost", failed[0] if failed else None, lost_nodes=lost)
                return
            yield Converged("timeout", failed[0] if failed else None)
            return
        await clock.sleep(POLL_SECONDS)


def lost_nodes(swarm: SwarmClient, target: Target) -> tuple[str, ...]:
    """The hostnames of the nodes Swarm does not report Ready that hold tasks of this
    service, of either release (Swarm may already have given up the new release's task
    there; blocking; none when the nodes cannot be read)."""
    try:
        tasks = swarm.tasks(target.name)
        nodes = swarm.nodes()
    except CoreError:
        return ()
    down = {n["ID"]: swarm_nodes.hostname(n) for n in nodes if not swarm_nodes.ready(n)}
    return tuple(sorted({down[t["NodeID"]] for t in tasks if t.get("NodeID") in down}))


def lost_words(nodes: tuple[str, ...]) -> str:
    named = ", ".join(nodes)
    return (
        f"node {named} went down during the rollout, with tasks of this service on it: "
        "Swarm's update waited for them and cannot see them until the node is back "
        "(`status` names down nodes)"
    )


def explain(
    swarm: SwarmClient,
    task: dict[str, Any] | None,
    tail: int = 10,
    lost: tuple[str, ...] = (),
) -> tuple[str, list[str]]:
    """Why a task failed, in one line, and the last lines its container logged; first
    the nodes lost during the rollout, when there were."""
    if lost:
        reason, lines = explain(swarm, task, tail) if task is not None else ("", [])
        return lost_words(lost) + (f"; a task failed: {reason}" if reason else ""), lines
    if task is None:
        return "no task of the new release became healthy in time", []
    status = task["Status"]
    reason = status.get("Err") or status.get("Message") or status.get("State", "failed")
    container_id = (status.get("ContainerStatus") or {}).get("ContainerID")
    if not container_id:
        return reason, []
    try:
        container = swarm.inspect_container(container_id) or {}
        lines = swarm.container_logs(container_id, tail)
    except CoreError as exc:
        if not transient(exc):
            raise
        return reason, []  # the verdict stands; only its explanation is lost
    health = (container.get("State") or {}).get("Health") or {}
    failures = [entry for entry in health.get("Log") or [] if entry.get("ExitCode") != 0]
    # A probe cut short by the container's stop dies of the signal (137, or -1): the last
    # probe that ran to its end is the one that says why.
    probes = [entry for entry in failures if 0 < entry.get("ExitCode", 0) < 128] or failures
    if probes:
        check = container.get("Config", {}).get("Healthcheck", {}).get("Test", [])
        command = " ".join(check[1:]) if check[:1] in (["CMD"], ["CMD-SHELL"]) else " ".join(check)
        last = probes[-1]
        output = " ".join((last.get("Output") or "").split()) or "(no output)"
        reason = f"health check `{command}` failed (exit {last.get('ExitCode')}): {output}"
    return reason, lines


VOLUME_RELEASE_SECONDS = 60.0  # a removed service's containers let go of their volumes
VOLUME_POLL_SECONDS = 0.5


async def _remove_when_free(
    remove: Callable[[], None], in_use: type[Exception], what: str, after: str, clock: Clock
) -> None:
    """``remove()`` once the containers of services just removed (or moved off) let go of
    ``what``; ``in_use`` if they still hold it after ``VOLUME_RELEASE_SECONDS``."""
    deadline = clock.monotonic() + VOLUME_RELEASE_SECONDS
    while True:
        try:
            await asyncio.to_thread(remove)
            return
        except in_use as exc:
            if clock.monotonic() > deadline:
                raise in_use(
                    f"{what} is still in use {VOLUME_RELEASE_SECONDS:g}s after {after} ({exc}); "
                    "remove it on the server"
                ) from exc
        await clock.sleep(VOLUME_POLL_SECONDS)


async def remove_volume(swarm: SwarmClient, volume: str, clock: Clock = SYSTEM) -> None:
    """Remove ``volume`` once the containers of a service just removed let go of it."""
    remove = functools.partial(swarm.remove_volume, volume)
    await _remove_when_free(remove, VolumeInUse, f"volume {volume}", "its service went", clock)


async def remove_network(swarm: SwarmClient, network: str, clock: Clock = SYSTEM) -> None:
    """Remove ``network`` once the tasks of services just taken off it are gone."""
    remove = functools.partial(swarm.remove_network, network)
    await _remove_when_free(
        remove, NetworkInUse, f"network {network}", "its services left it", clock
    )
