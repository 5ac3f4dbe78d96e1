"""Time, injected: everything where time decides something reads it from a ``Clock``.

``SYSTEM`` is the real one. Tests pass a clock they advance themselves, so a guard window,
an approval's expiry or a schedule passes without anybody sleeping.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from typing import Protocol


class Clock(Protocol):
    def time(self) -> float:
        """Wall-clock seconds since the epoch (what records store)."""
        ...

    def monotonic(self) -> float:
        """Seconds that only go forward (what deadlines and durations use)."""
        ...

    def now(self) -> dt.datetime:
        """The wall clock as an aware UTC datetime."""
        ...

    async def sleep(self, seconds: float) -> None:
        """Wait ``seconds`` of this clock's time."""
        ...


class SystemClock:
    def time(self) -> float:
        return time.time()

    def monotonic(self) -> float:
        return time.monotonic()

    def now(self) -> dt.datetime:
        return dt.datetime.now(dt.UTC)

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


SYSTEM: Clock = SystemClock()
