"""One change per app and environment at a time, held in SQLite with a heartbeat.

A process that dies stops beating; after ``ttl`` seconds its lock is taken over by the next
deploy, or an admin clears it at once with ``unlock``.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import socket
from collections.abc import AsyncIterator

from core.deploy.record import ttl_seconds
from core.errors import CoreError
from core.store import Store


class LockBusy(CoreError):
    """Another deploy, rollback, scale or restart of the same app/env is running."""


def lock_key(app: str, env: str) -> str:
    return f"{app}/{env}"


@contextlib.asynccontextmanager
async def hold(store: Store, app: str, env: str, owner: str, what: str) -> AsyncIterator[None]:
    key, ttl = lock_key(app, env), ttl_seconds()
    holder = await asyncio.to_thread(
        store.acquire_lock, key, owner=owner, what=what, ttl=ttl, host=socket.gethostname()
    )
    if holder is not None:
        since = dt.datetime.fromtimestamp(holder["acquired_at"], dt.UTC).strftime("%H:%M:%S UTC")
        raise LockBusy(
            f"{key} is being changed by {holder['owner']} ({holder['what']}) since {since}; "
            f"wait for it to finish, or if that process died, an admin can `unlock {app} "
            f"--env {env}`"
        )

    async def beat() -> None:
        while True:
            await asyncio.sleep(ttl / 4)
            await asyncio.to_thread(store.heartbeat_lock, key, owner)

    beating = asyncio.create_task(beat())
    try:
        yield
    finally:
        beating.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await beating
        await asyncio.shield(asyncio.to_thread(store.release_lock, key, owner))
