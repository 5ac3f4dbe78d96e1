"""Locks held in SQLite with a heartbeat: one holder per key, across processes.

A process that dies stops beating; after ``ttl_seconds()`` its lock is taken over by the next
one (``SHIPBOT_LOCK_TTL``, 60 s by default; deployment rows use the same time).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import os
import socket
from collections.abc import AsyncIterator, Callable
from typing import Any

from core.errors import CoreError
from core.store import Store

DEFAULT_TTL = 60.0


def ttl_seconds() -> float:
    """How long a silent heartbeat still counts as alive: for locks and deployment rows."""
    return float(os.environ.get("SHIPBOT_LOCK_TTL", DEFAULT_TTL))


@contextlib.asynccontextmanager
async def held(
    store: Store,
    key: str,
    owner: str,
    what: str,
    busy: Callable[[dict[str, Any]], Exception],
) -> AsyncIterator[None]:
    """Hold ``key`` while the block runs, beating; ``busy(holder_row)`` is raised when
    someone else holds it."""
    ttl = ttl_seconds()
    holder = await asyncio.to_thread(
        store.acquire_lock, key, owner=owner, what=what, ttl=ttl, host=socket.gethostname()
    )
    if holder is not None:
        raise busy(holder)

    async def beat() -> None:
        while True:
            await store.clock.sleep(ttl / 4)
            await asyncio.to_thread(store.heartbeat_lock, key, owner)

    beating = asyncio.create_task(beat())
    try:
        yield
    finally:
        beating.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await beating
        await asyncio.shield(asyncio.to_thread(store.release_lock, key, owner))


class DatabaseBusy(CoreError):
    """A backup, verify or restore of the same database is already running."""


def database_key(database: str) -> str:
    return f"db/{database}"


def database_lock(
    store: Store, database: str, owner: str, what: str
) -> contextlib.AbstractAsyncContextManager[None]:
    """Hold ``db/NAME`` while ``what`` runs; ``DatabaseBusy`` if someone else holds it."""

    def busy(holder: dict[str, Any]) -> DatabaseBusy:
        since = dt.datetime.fromtimestamp(holder["acquired_at"], dt.UTC).strftime("%H:%M:%S UTC")
        return DatabaseBusy(
            f"{database} is busy: {holder['what']} by {holder['owner']} since {since}"
        )

    return held(store, database_key(database), owner, what, busy)
