"""Slack's HTTP requests being answered, and the work that waits for them: acks first.

Bolt answers a request once its listener has called ``ack()``, but it learns that by polling
every 10 ms; a listener that goes on to work at once (parse, read the store, render) holds
the loop, and with it its own answer and every other request's, until the work next awaits.
So listeners wait, after their ack, until no request has been answered or arrived for
``settle`` seconds (a burst leaves gaps of one round trip between an answer and the next
request), for at most ``limit`` seconds (a stream of requests cannot starve the work). With
one request at a time the wait is its own answer's, under 10 ms, and ``settle``.

In Socket Mode nothing passes the middleware and the wait is always over at once.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from aiohttp import web

LIMIT = 1.0  # seconds the work of an acked command waits for the answers at most
SETTLE = 0.02  # seconds with nothing to answer that count as quiet


class Answering:
    """Counts the requests the HTTP server is answering (``middleware``); ``quiet`` waits
    until there have been none for ``settle`` seconds, or ``limit`` seconds have passed."""

    def __init__(self, limit: float = LIMIT, settle: float = SETTLE) -> None:
        self.limit, self.settle = limit, settle
        self.count = 0
        self.arrived = 0  # requests since the start
        self._none = asyncio.Event()
        self._none.set()
        # one watch of the quiet shared by every waiting command: a burst leaves a hundred
        # of them waiting, which must not each wake at every gap
        self._watch: asyncio.Task[None] | None = None

    @web.middleware
    async def middleware(self, request: web.Request, handler: Any) -> web.StreamResponse:
        self.count += 1
        self.arrived += 1
        self._none.clear()
        try:
            return await handler(request)
        finally:
            self.count -= 1
            if self.count == 0:
                self._none.set()

    async def quiet(self) -> None:
        if self._watch is None or self._watch.done():
            self._watch = asyncio.create_task(self._settled())
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(self._watch), self.limit)

    async def _settled(self) -> None:
        while True:
            await self._none.wait()
            arrived = self.arrived
            await asyncio.sleep(self.settle)
            if self.count == 0 and self.arrived == arrived:
                return
