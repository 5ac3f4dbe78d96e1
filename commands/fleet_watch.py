"""The alert watchers of every server, kept in step with the servers themselves: a server
added while ``shipbot serve`` runs is watched from the next sync (a few seconds), one
removed is no longer watched, and a watcher that died of a bug is started again.

``sync`` is one step (start what is missing, stop what is gone); ``run`` syncs every
``SYNC_SECONDS`` of the plane's clock until cancelled, then stops every watcher.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from core.clock import Clock
from core.watch.alerts import AlertWatch

log = logging.getLogger("shipbot.alerts")
SYNC_SECONDS = 5.0  # at most: a check_seconds below it syncs as often as the checks run


class Fleet:
    def __init__(
        self,
        names: Callable[[], list[str]],
        make: Callable[[str], AlertWatch],
        clock: Clock,
        every: float = SYNC_SECONDS,
    ) -> None:
        self.names = names  # the servers to watch now (blocking: it reads the store)
        self.make = make  # a new watcher of one server
        self.clock = clock
        self.every = every
        self.watches: dict[str, AlertWatch] = {}
        self._tasks: dict[str, asyncio.Task[None]] = {}

    async def sync(self) -> tuple[list[str], list[str]]:
        """Start the watchers of servers not watched yet, stop those of servers gone;
        returns (started, stopped)."""
        wanted = await asyncio.to_thread(self.names)
        for name, task in list(self._tasks.items()):
            if task.done() and not task.cancelled() and task.exception() is not None:
                log.error("%s: the alert watcher stopped", name, exc_info=task.exception())
                del self._tasks[name]  # started again below
        stopped = [name for name in self._tasks if name not in wanted]
        for name in stopped:
            await self._stop(name)
        started = [name for name in wanted if name not in self._tasks]
        for name in started:
            watch = self.make(name)
            self.watches[name] = watch
            self._tasks[name] = asyncio.create_task(watch.run(), name=f"alerts/{name}")
            log.info("%s: watched", name)
        return started, stopped

    async def _stop(self, name: str) -> None:
        task = self._tasks.pop(name)
        self.watches.pop(name, None)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        log.info("%s: no longer watched", name)

    @property
    def watched(self) -> list[str]:
        return sorted(self._tasks)

    async def run(self) -> None:
        try:
            while True:
                await self.sync()
                await self.clock.sleep(self.every)
        finally:
            for name in list(self._tasks):
                await self._stop(name)
