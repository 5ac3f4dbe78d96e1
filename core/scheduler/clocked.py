"""The one scheduler: cron and interval jobs, and long-running watchers, on an injected clock.

Everything ``shipbot serve`` does on time runs here: backup schedules, the digest, the
drift, certificate and backup-silence watches, approval expiry. Each job is built afresh at
every start (shipbot.yml is the only truth), with a misfire grace (a run that could not
start on time still starts within it; ``None``: however late), coalescing (a backlog is
one run) and one run at a time (a job still running when it is due again is skipped).

Time comes from a ``Clock`` (core/clock.py): ``run_due`` starts what is due at the clock's
``now``, and the loop waits with the clock's ``sleep``, so a test advances its own clock
and nobody sleeps. Cron triggers are ``core.scheduler.cron.trigger``'s; ``Every`` is an interval.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from core.clock import SYSTEM, Clock

log = logging.getLogger("shipbot.scheduler")
TICK = dt.timedelta(microseconds=1)
MAX_WAIT = 1.0  # seconds: the loop looks again at least this often (jobs added later)
MAX_BACKLOG = 100_000  # missed fire times walked one by one before jumping to now


class Trigger(Protocol):
    def get_next_fire_time(
        self, previous_fire_time: dt.datetime | None, now: dt.datetime
    ) -> dt.datetime | None: ...


@dataclass(frozen=True)
class Every:
    """Every ``seconds``, first at the start."""

    seconds: float

    def get_next_fire_time(
        self, previous_fire_time: dt.datetime | None, now: dt.datetime
    ) -> dt.datetime | None:
        if previous_fire_time is None:
            return now
        step = dt.timedelta(seconds=self.seconds)
        upcoming = previous_fire_time + step
        return upcoming if upcoming >= now else now + step


@dataclass
class Scheduled:
    id: str
    trigger: Trigger
    func: Callable[..., Awaitable[object]]
    args: tuple[Any, ...] = ()
    misfire_grace_time: float | None = None  # seconds late a run may still start
    coalesce: bool = True
    max_instances: int = 1
    next_run_time: dt.datetime | None = None
    running: asyncio.Task[None] | None = field(default=None, repr=False)


class Scheduler:
    def __init__(self, clock: Clock = SYSTEM) -> None:
        self.clock = clock
        self.jobs: list[Scheduled] = []
        self.watchers: dict[str, Callable[[], Awaitable[object]]] = {}
        self._tasks: list[asyncio.Task[Any]] = []
        self._loop: asyncio.Task[None] | None = None
        self.running = False

    def add(
        self,
        job_id: str,
        trigger: Trigger,
        func: Callable[..., Awaitable[object]],
        args: tuple[Any, ...] = (),
        grace: float | None = None,
    ) -> Scheduled:
        job = Scheduled(job_id, trigger, func, args, grace)
        if self.running:
            job.next_run_time = trigger.get_next_fire_time(None, self.clock.now())
        self.jobs.append(job)
        return job

    def watch(self, watcher_id: str, run: Callable[[], Awaitable[object]]) -> None:
        """A long-running coroutine (a watcher), started with the scheduler, cancelled at stop."""
        self.watchers[watcher_id] = run

    def get_jobs(self) -> list[Scheduled]:
        return list(self.jobs)

    def start(self, paused: bool = False) -> Scheduler:
        """Compute every first fire time; unless ``paused``, start the loop and the watchers
        (then call it inside the running event loop)."""
        now = self.clock.now()
        for job in self.jobs:
            job.next_run_time = job.trigger.get_next_fire_time(None, now)
            log.info("scheduled %s: %s", job.id, job.trigger)
        self.running = True
        if not paused:
            for watcher_id, run in self.watchers.items():
                self._tasks.append(asyncio.create_task(self._guarded(watcher_id, run)))
            self._loop = asyncio.create_task(self._run_forever())
        return self

    async def run_due(self) -> list[asyncio.Task[None]]:
        """Start every job due at the clock's now; returns the runs started."""
        now = self.clock.now()
        started = []
        for job in self.jobs:
            due = job.next_run_time
            if due is None or due > now:
                continue
            due, job.next_run_time = self._latest(job.trigger, due, now)
            late = (now - due).total_seconds()
            if job.misfire_grace_time is not None and late > job.misfire_grace_time:
                log.warning("%s missed its %s run by %.0f s: skipped", job.id, due, late)
            elif job.running is not None and not job.running.done():
                log.warning("%s is still running: its %s run is skipped", job.id, due)
            else:
                job.running = asyncio.create_task(self._guarded(job.id, job.func, *job.args))
                self._tasks.append(job.running)
                started.append(job.running)
        self._tasks = [task for task in self._tasks if not task.done()]
        return started

    @staticmethod
    def _latest(
        trigger: Trigger, due: dt.datetime, now: dt.datetime
    ) -> tuple[dt.datetime, dt.datetime | None]:
        """Coalescing: the latest fire time at or before ``now``, and the one after it."""
        upcoming = trigger.get_next_fire_time(due, due + TICK)
        for _ in range(MAX_BACKLOG):
            if upcoming is None or upcoming > now:
                return due, upcoming
            due, upcoming = upcoming, trigger.get_next_fire_time(upcoming, upcoming + TICK)
        return due, trigger.get_next_fire_time(None, now + TICK)  # a clock that jumped far

    def _wait(self) -> float:
        now = self.clock.now()
        times = [job.next_run_time for job in self.jobs if job.next_run_time is not None]
        if not times:
            return MAX_WAIT
        return min(MAX_WAIT, max(0.0, (min(times) - now).total_seconds()))

    async def _run_forever(self) -> None:
        while True:
            await self.run_due()
            await self.clock.sleep(self._wait())

    @staticmethod
    async def _guarded(job_id: str, run: Callable[..., Awaitable[object]], *args: Any) -> None:
        try:
            await run(*args)
        except asyncio.CancelledError:
            raise
        except Exception:  # a job's failure is posted by the job; never kill the scheduler
            log.exception("scheduled %s failed", job_id)

    def stop(self) -> None:
        """Cancel the loop, the watchers and any run in progress."""
        self.running = False
        for task in [*self._tasks, *([self._loop] if self._loop else [])]:
            task.cancel()

    async def aclose(self) -> None:
        tasks = [*self._tasks, *([self._loop] if self._loop else [])]
        self.stop()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.gather(*tasks, return_exceptions=True)
        self._tasks, self._loop = [], None
