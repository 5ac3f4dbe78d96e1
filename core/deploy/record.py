"""A deployment row for each change, kept beating while the change runs.

Another process finds an interrupted change by its stale heartbeat (``reconcile``), never by
PID: in the shipped image shipbot is PID 1 in every container.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

from core.durations import format_duration
from core.events import Event
from core.store import Store
from core.store.locks import ttl_seconds
from core.swarm import SwarmClient, rollout

if TYPE_CHECKING:
    from core.plane import Plane


class Deployment:
    def __init__(self, store: Store, deployment_id: int) -> None:
        self.store, self.id = store, deployment_id
        self.finished = False

    async def finish(self, status: str, message: str = "") -> None:
        await asyncio.to_thread(self.store.finish_deployment, self.id, status, message)
        self.finished = True


@contextlib.asynccontextmanager
async def running(store: Store, **fields: Any) -> AsyncIterator[Deployment]:
    """Start a deployment row; beat while inside; an exit without ``finish`` records why."""
    deployment = Deployment(store, await asyncio.to_thread(store.start_deployment, **fields))

    async def beat() -> None:
        while True:
            await store.clock.sleep(ttl_seconds() / 4)
            await asyncio.to_thread(store.heartbeat_deployment, deployment.id)

    beating = asyncio.create_task(beat())
    try:
        yield deployment
    except BaseException as exc:
        if not deployment.finished:
            cancelled = isinstance(exc, asyncio.CancelledError | GeneratorExit)
            status = "interrupted" if cancelled else "failed"
            await asyncio.shield(deployment.finish(status, str(exc) or type(exc).__name__))
        raise
    finally:
        beating.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await beating


class Operation:
    """One recorded change on a swarm (deploy, rollback, scale, restart): its deployment row,
    its clock, its rollout watched to a verdict and, on failure, Swarm's reason."""

    def __init__(self, run: Deployment, swarm: SwarmClient, started: float) -> None:
        self.run, self.swarm, self.started = run, swarm, started
        self.result: rollout.Converged | None = None

    async def watch(
        self, steps: AsyncIterator[rollout.Progress | rollout.Converged]
    ) -> AsyncIterator[Event]:
        """The rollout's progress; its verdict is ``self.result`` after."""
        watch = rollout.Watch(steps)
        async for event in watch.progress():
            yield event
        self.result = watch.verdict

    @property
    def ok(self) -> bool:
        assert self.result is not None
        return self.result.ok

    def duration(self) -> str:
        return format_duration(time.monotonic() - self.started)

    async def explain(self) -> tuple[str, list[str]]:
        """Why the rollout failed, and its failed task's log tail."""
        assert self.result is not None
        return await asyncio.to_thread(
            rollout.explain, self.swarm, self.result.failed_task, 10, self.result.lost_nodes
        )

    async def finish(self, status: str, message: str = "") -> None:
        await self.run.finish(status, message)


@contextlib.asynccontextmanager
async def operation(
    plane: Plane,
    swarm: SwarmClient,
    *,
    app: str,
    env: str,
    kind: str,
    user: str,
    release: int,
    approved_by: str | None = None,
    started: float | None = None,
) -> AsyncIterator[Operation]:
    """The envelope every change shares: its row started, beating and closed whatever
    happens (``running``), its clock started (or since ``started``)."""
    began = time.monotonic() if started is None else started
    async with running(
        plane.store,
        app=app,
        env=env,
        kind=kind,
        started_by=user,
        release=release,
        approved_by=approved_by,
    ) as run:
        yield Operation(run, swarm, began)
