"""One change per app and environment at a time, held in SQLite with a heartbeat.

A process that dies stops beating; after ``ttl`` seconds its lock is taken over by the next
deploy, or an admin clears it at once with ``unlock``.
"""

from __future__ import annotations

import contextlib
import datetime as dt
from typing import Any

from core.errors import CoreError
from core.store import Store
from core.store.locks import held


class LockBusy(CoreError):
    """Another deploy, rollback, scale or restart of the same app/env is running."""


def lock_key(app: str, env: str) -> str:
    return f"{app}/{env}"


def hold(
    store: Store, app: str, env: str, owner: str, what: str
) -> contextlib.AbstractAsyncContextManager[None]:
    """The app/env lock while a change runs; ``LockBusy`` names who holds it and since when."""

    def busy(holder: dict[str, Any]) -> LockBusy:
        since = dt.datetime.fromtimestamp(holder["acquired_at"], dt.UTC).strftime("%H:%M:%S UTC")
        return LockBusy(
            f"{lock_key(app, env)} is being changed by {holder['owner']} ({holder['what']}) "
            f"since {since}; wait for it to finish, or if that process died, an admin can "
            f"`unlock {app} --env {env}`"
        )

    return held(store, lock_key(app, env), owner, what, busy)
