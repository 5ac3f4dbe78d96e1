"""Clocks for tests (``core.clock.Clock``): time passes when the test moves it, not by waiting.

``ManualClock`` stands still until ``advance()``; a ``sleep`` on it wakes once the clock has
been advanced past its end (or, with ``auto=True``, advances the clock itself). A sleeper that
nobody wakes fails after ``STUCK_SECONDS`` of real time instead of hanging the run.

``JumpClock`` is the system's time, which a test may move forward at once: what waits on a real
engine waits as usual, and what waits on time alone (an approval's expiry, a lock's heartbeat)
passes with a ``jump``.

``SwarmSteps`` is the fast tier's clock for rollouts on ``FakeSwarm``s: every look at a fake is
one of its steps (one second), so a deadline passes as the rollout is watched, and a pause
only yields to the loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import time
from collections.abc import Callable

from core.swarm.testing import FakeSwarm

START = 1_800_000_000.0  # 2027-01-15: any fixed instant, so tests read exact times
STUCK_SECONDS = 5.0  # real time a manual sleeper waits for the test to advance the clock


class ClockStuck(AssertionError):
    """A sleep on a ManualClock that the test never advanced far enough."""


class ManualClock:
    def __init__(self, start: float = START, *, auto: bool = False) -> None:
        self._wall = start
        self._mono = 0.0
        self.auto = auto
        self.slept: list[float] = []  # every sleep asked of it, in order
        self._sleepers: list[tuple[float, asyncio.Future[None]]] = []

    @classmethod
    def at(cls, when: dt.datetime, *, auto: bool = False) -> ManualClock:
        return cls(when.timestamp(), auto=auto)

    def time(self) -> float:
        return self._wall

    def monotonic(self) -> float:
        return self._mono

    def now(self) -> dt.datetime:
        return dt.datetime.fromtimestamp(self._wall, dt.UTC)

    def advance(self, seconds: float) -> None:
        """Move time forward by ``seconds``; sleepers whose end is reached wake."""
        assert seconds >= 0, f"time only goes forward, not by {seconds}"
        self._wall += seconds
        self._mono += seconds
        due = [(end, fut) for end, fut in self._sleepers if end <= self._mono]
        self._sleepers = [(end, fut) for end, fut in self._sleepers if end > self._mono]
        for _, fut in due:
            if not fut.done():
                fut.set_result(None)

    def advance_to(self, when: dt.datetime) -> None:
        """Move time forward to ``when``."""
        self.advance(when.timestamp() - self._wall)

    @property
    def sleepers(self) -> int:
        """How many sleeps wait on this clock now."""
        return sum(1 for _, fut in self._sleepers if not fut.done())

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        if seconds <= 0:
            await asyncio.sleep(0)
            return
        if self.auto:
            self.advance(seconds)
            await asyncio.sleep(0)
            return
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._sleepers.append((self._mono + seconds, fut))
        try:
            await asyncio.wait_for(fut, STUCK_SECONDS)
        except TimeoutError:
            raise ClockStuck(
                f"a {seconds:g}s sleep waited {STUCK_SECONDS:g}s of real time: "
                "the test never advanced the clock that far"
            ) from None

    async def wait_for_sleepers(self, count: int = 1) -> None:
        """Until ``count`` sleeps wait on this clock (loops under test reached their pause),
        with a real-time deadline."""
        deadline = time.monotonic() + STUCK_SECONDS
        while self.sleepers < count:
            assert time.monotonic() < deadline, f"{self.sleepers} of {count} sleepers came"
            await asyncio.sleep(0.005)


class JumpClock:
    def __init__(self) -> None:
        self.offset = 0.0
        self._waiting: list[asyncio.Future[None]] = []

    def time(self) -> float:
        return time.time() + self.offset

    def monotonic(self) -> float:
        return time.monotonic() + self.offset

    def now(self) -> dt.datetime:
        return dt.datetime.fromtimestamp(self.time(), dt.UTC)

    def jump(self, seconds: float) -> None:
        """Move time forward by ``seconds`` now; sleeps it covers end."""
        assert seconds >= 0, f"time only goes forward, not by {seconds}"
        self.offset += seconds
        for fut in self._waiting:
            if not fut.done():
                fut.set_result(None)

    async def sleep(self, seconds: float) -> None:
        end = self.monotonic() + seconds
        while (left := end - self.monotonic()) > 0:  # a real wait of at most ``seconds``
            fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            self._waiting.append(fut)
            try:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(fut, left)
            finally:
                self._waiting.remove(fut)


class SwarmSteps:
    """The time of fake swarms: the wall clock is the first one's ``now`` (what its tasks'
    timestamps are on), and deadlines move as any of them steps (their ``now`` summed)."""

    def __init__(self, first: FakeSwarm, *more: FakeSwarm) -> None:
        self._wall: Callable[[], float] = lambda: first.now
        self._steps: Callable[[], float] = lambda: first.now + sum(s.now for s in more)

    def time(self) -> float:
        return self._wall()

    def monotonic(self) -> float:
        return self._steps()

    def now(self) -> dt.datetime:
        return dt.datetime.fromtimestamp(self._wall(), dt.UTC)

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(0)
