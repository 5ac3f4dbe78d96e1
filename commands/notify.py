"""Notifications to channels through the SQLite outbox.

A message is written first and delivered by the adapter of its platform afterwards, with
retries and backoff, so a chat outage or a restart loses nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from fnmatch import fnmatchcase

from commands.replies import Reply, decode, encode
from core.config import NotifyRoute
from core.store import Store

log = logging.getLogger("shipbot.notify")
MAX_BACKOFF = 300.0

Send = Callable[[str, Reply], Awaitable[None]]


class Notifier:
    def __init__(self, store: Store, routes: list[NotifyRoute]) -> None:
        self.store = store
        self.routes = routes

    def publish(
        self,
        kind: str,
        app: str | None,
        env: str | None,
        reply: Reply,
        skip: tuple[str, str] | None = None,
    ) -> int:
        """Queue ``reply`` for every route that wants ``kind`` about app/env; returns how many.

        ``skip`` is the (platform, channel) the reply was already shown in.
        """
        queued = 0
        for route in self.routes:
            if (route.platform, route.channel) == skip or kind not in route.kinds:
                continue
            if app is not None and not any(fnmatchcase(app, p) for p in route.apps):
                continue
            if env is not None and not any(fnmatchcase(env, p) for p in route.envs):
                continue
            self.store.enqueue(
                platform=route.platform, channel=route.channel, kind=kind, payload=encode(reply)
            )
            queued += 1
        return queued

    async def deliver_due(self, platform: str, send: Send) -> int:
        """Send what is due for ``platform``; a failure is retried later, the rest go on."""
        delivered = 0
        for row in self.store.due_messages(platform, self.store.clock.time()):
            try:
                await send(row["channel"], decode(row["payload"]))
            except Exception as exc:  # any transport error: keep the message, try later
                delay = min(MAX_BACKOFF, 2.0 ** (row["attempts"] + 1))
                log.warning(
                    "outbox %s to %s failed (%s); retry in %.0fs",
                    row["id"],
                    row["channel"],
                    exc,
                    delay,
                )
                self.store.mark_retry(row["id"], str(exc), delay)
                continue
            self.store.mark_sent(row["id"])
            delivered += 1
        return delivered

    async def run(self, platform: str, send: Send, interval: float = 1.0) -> None:
        """Deliver forever (until cancelled)."""
        while True:
            await self.deliver_due(platform, send)
            await self.store.clock.sleep(interval)
