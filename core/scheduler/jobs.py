"""Backup schedules: cron expressions from ``backups.schedules`` as jobs of the one
scheduler (core/scheduler/clocked.py).

They are built afresh at every start of ``shipbot serve`` (no
job store: shipbot.yml is the only truth), with a misfire grace (a run that could not start
on time still starts within ``backups.misfire_grace_seconds``), coalescing (a backlog is one
run) and ``max_instances=1``. ``database_lock`` keeps two backups of one database from
overlapping across processes too (the store's lock ``db/NAME``, with a heartbeat).

The time functions take ``now`` so callers and tests use any clock: ``fire_times`` and
``last_fire`` ask APScheduler's own ``CronTrigger`` when it fires, ``due`` says whether a
schedule fired between two instants.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import Any, Protocol

from core.clock import SYSTEM, Clock
from core.scheduler.clocked import Scheduler
from core.scheduler.cron import trigger

log = logging.getLogger("shipbot.scheduler")
UTC = dt.UTC
TICK = dt.timedelta(microseconds=1)
LOOKBACK_FIRST = dt.timedelta(minutes=2)
LOOKBACK_MAX = dt.timedelta(days=800)

BACKUP, VERIFY, REPORT = "backup", "verify", "report"


def fire_times(cron: str, start: dt.datetime, end: dt.datetime) -> Iterator[dt.datetime]:
    """Every fire time in [start, end], in order."""
    cron_trigger = trigger(cron)
    at = cron_trigger.get_next_fire_time(None, start)
    while at is not None and at <= end:
        yield at
        at = cron_trigger.get_next_fire_time(at, at + TICK)


def last_fire(cron: str, now: dt.datetime) -> dt.datetime | None:
    """The latest fire time at or before ``now`` (None if none within ~2 years)."""
    window = LOOKBACK_FIRST
    while window <= LOOKBACK_MAX:
        found = None
        for found in fire_times(cron, now - window, now):  # noqa: B007 (the last one)
            pass
        if found is not None:
            return found
        window *= 2
    return None


def period(cron: str, now: dt.datetime) -> dt.timedelta:
    """How far apart the schedule's runs are around ``now``: the last fire to the next."""
    last = last_fire(cron, now)
    upcoming = trigger(cron).get_next_fire_time(last, (last or now) + TICK)
    if last is None or upcoming is None:
        return dt.timedelta(days=1)
    return upcoming - last


def due(cron: str, since: dt.datetime, now: dt.datetime) -> dt.datetime | None:
    """The latest fire time in (since, now], if the schedule fired in between."""
    last = last_fire(cron, now)
    return last if last is not None and last > since else None


@dataclass(frozen=True)
class Job:
    id: str  # "backup/maindb", "verify/maindb", "report"
    what: str  # BACKUP, VERIFY or REPORT
    database: str | None
    cron: str


class BackupsConfig(Protocol):
    """What the scheduler reads of ``backups:`` (core/config/data.py's model), typed here so
    the scheduler, which the config imports for cron fields, does not import the config."""

    @property
    def schedules(self) -> dict[str, Any]: ...

    @property
    def report(self) -> str | None: ...

    @property
    def misfire_grace_seconds(self) -> float: ...


def jobs(config: BackupsConfig | None) -> list[Job]:
    """The jobs ``backups.schedules`` asks for, in a stable order."""
    out: list[Job] = []
    for name, schedule in sorted((config.schedules if config else {}).items()):
        out.append(Job(f"{BACKUP}/{name}", BACKUP, name, schedule.cron))
        if schedule.verify:
            out.append(Job(f"{VERIFY}/{name}", VERIFY, name, schedule.verify))
    if config is not None and config.report:
        out.append(Job(REPORT, REPORT, None, config.report))
    return out


def due_jobs(all_jobs: list[Job], since: dt.datetime, now: dt.datetime) -> list[Job]:
    """The jobs whose schedule fired in (since, now]."""
    return [job for job in all_jobs if due(job.cron, since, now) is not None]


Run = Callable[[Job], Awaitable[object]]


class BackupScheduler:
    """The backup schedules alone on the one scheduler (core/scheduler/clocked.py);
    ``run`` is called with each due ``Job``. ``shipbot serve`` adds them to its own."""

    def __init__(self, config: BackupsConfig | None, run: Run, clock: Clock = SYSTEM) -> None:
        self.config = config
        self.run = run
        self.jobs = jobs(config)
        self.clock = clock
        self.scheduler: Scheduler | None = None

    def start(self, paused: bool = False) -> Scheduler:
        """Build every job afresh and start; call it inside the running event loop."""
        grace = self.config.misfire_grace_seconds if self.config else 600
        scheduler = Scheduler(self.clock)
        for job in self.jobs:
            scheduler.add(job.id, trigger(job.cron), self.run, (job,), grace)
        self.scheduler = scheduler.start(paused=paused)
        return scheduler

    def stop(self) -> None:
        if self.scheduler is not None:
            self.scheduler.stop()
        self.scheduler = None


class CronJobs:
    """Posts on a cron of their own (the daily digest): each entry is (id, cron, run), on
    the one scheduler, with a misfire grace, coalescing and one run at a time."""

    def __init__(
        self,
        entries: list[tuple[str, str, Callable[[], Awaitable[object]]]],
        grace: int,
        clock: Clock = SYSTEM,
    ) -> None:
        self.entries = entries
        self.grace = grace
        self.clock = clock
        self.scheduler: Scheduler | None = None

    def add_to(self, scheduler: Scheduler) -> None:
        for job_id, cron, run in self.entries:
            scheduler.add(job_id, trigger(cron), run, (), self.grace)

    def start(self) -> Scheduler:
        """Call it inside the running event loop."""
        scheduler = Scheduler(self.clock)
        self.add_to(scheduler)
        self.scheduler = scheduler.start()
        return scheduler

    def stop(self) -> None:
        if self.scheduler is not None:
            self.scheduler.stop()
        self.scheduler = None
