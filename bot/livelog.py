"""A live log message: the latest lines of a stream, edited at most once per interval.

Every API call for the message comes from one ticker task, so it is never edited more than
once per ``interval`` however fast lines arrive; ``close`` makes the last edit and uploads
the log when it was longer than what the message shows: whole up to ``KEPT_LINES`` lines,
its end beyond (a build may print millions; memory holds only that many). Adapters supply
the calls.
"""

from __future__ import annotations

import asyncio
import itertools
import re
from abc import ABC, abstractmethod
from collections import deque

from core.clock import SYSTEM, Clock

LIVE_LINES = 40
KEPT_LINES = 20_000


class LiveLog(ABC):
    def __init__(self, title: str, interval: float = 1.0, clock: Clock = SYSTEM) -> None:
        self.title, self.interval, self.clock = title, interval, clock
        self.lines: deque[str] = deque(maxlen=KEPT_LINES)
        self.count = 0  # lines added, kept or not
        self._shown = 0
        self._started = False
        self._closing = False
        self._wake = asyncio.Event()
        self._ticker = asyncio.create_task(self._tick())

    @abstractmethod
    async def post(self, lines: list[str]) -> None:
        """Create the message showing ``lines``."""

    @abstractmethod
    async def edit(self, lines: list[str]) -> None:
        """Replace what the message shows with ``lines``."""

    @abstractmethod
    async def upload(self, filename: str, data: bytes, comment: str) -> None:
        """Attach the whole log beside the message."""

    def add(self, line: str) -> None:
        self.lines.append(line)
        self.count += 1
        self._wake.set()

    async def _tick(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            if self._shown != self.count:
                await self._flush()
                if self._closing and self._shown == self.count:
                    return
                await self.clock.sleep(self.interval)
            elif self._closing:
                return

    async def _flush(self) -> None:
        self._shown = self.count
        latest = list(itertools.islice(self.lines, max(0, len(self.lines) - LIVE_LINES), None))
        if self._started:
            await self.edit(latest)
        else:
            self._started = True
            await self.post(latest)

    async def close(self) -> None:
        self._closing = True
        self._wake.set()
        await self._ticker
        if self.count > LIVE_LINES:
            name = re.sub(r"[^a-z0-9]+", "-", self.title.lower()).strip("-") + ".log"
            data = ("\n".join(self.lines) + "\n").encode()
            kept = len(self.lines)
            what = "full log" if kept == self.count else f"the last {kept} lines of the log"
            await self.upload(name, data, f"{what}: {self.count} lines")
