"""Slack's HTTP requests being answered, and the work that waits for them: acks first.

Bolt answers a request once its listener has called ``ack()``, but it learns that by polling
every 10 ms; a listener that goes on to work at once (parse, read the store, render) holds
the loop, and with it its own answer and every other request's, until the work next awaits.
So listeners wait, after their ack, until no request is being answered, for at most
``limit`` seconds (a stream of requests cannot starve the work). With one request at a time
the wait is its own answer's, under 10 ms.

In Socket Mode nothing passes the middleware and the wait is always over at once.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from aiohttp import web

LIMIT = 1.0  # seconds the work of an acked command waits for the answers at most


class Answering:
    """Counts the requests the HTTP server is answering (``middleware``); ``quiet`` waits
    until there are none, or ``limit`` seconds have passed."""

    def __init__(self, limit: float = LIMIT) -> None:
        self.limit = limit
        self.count = 0
        self._none = asyncio.Event()
        self._none.set()

    @web.middleware
    async def middleware(self, request: web.Request, handler: Any) -> web.StreamResponse:
        self.count += 1
        self._none.clear()
        try:
            return await handler(request)
        finally:
            self.count -= 1
            if self.count == 0:
                self._none.set()

    async def quiet(self) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._none.wait(), self.limit)
