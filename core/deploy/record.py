"""A deployment row for each change, kept beating while the change runs.

Another process finds an interrupted change by its stale heartbeat (``reconcile``), never by
PID: in the shipped image shipbot is PID 1 in every container.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

from core.locks import ttl_seconds
from core.store import Store


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
