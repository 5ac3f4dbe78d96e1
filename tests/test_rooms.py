"""Capabilities as rooms: a toy capability declared here alone (its shipbot.yml section,
its table, one command, one schedule) runs through the composition root, its schedule on
an injected clock and its command through the dispatcher; and the one scheduler's rules."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import AsyncIterator, Iterable, Iterator
from pathlib import Path

import httpx
import pytest
from pydantic import BaseModel, ConfigDict, Field

from commands.catalog.context import Context
from commands.dispatch import StartError
from commands.grammar import REGISTRY, command
from commands.permissions import VIEW
from commands.replies import Reply, Result
from core.clients import Clients
from core.scheduler.clocked import Every, Scheduler
from core.scheduler.cron import trigger
from core.store.migrations import Migrations
from core.store.sql import Database
from core.swarm.servers import Servers
from core.swarm.testing import FakeSwarm
from rooms.capability import Capability, Periodic, Schedule
from rooms.registry import ROOMS
from rooms.root import Root
from tests.chat import result, say

UTC = dt.UTC
START = dt.datetime(2026, 12, 7, 10, 30, tzinfo=UTC)


class ManualClock:
    """Time that moves only when told; ``sleep`` lets the loop run, then moves it."""

    def __init__(self, now: dt.datetime = START) -> None:
        self.at = now
        self.slept: list[float] = []

    def time(self) -> float:
        return self.at.timestamp()

    def monotonic(self) -> float:
        return self.at.timestamp()

    def now(self) -> dt.datetime:
        return self.at

    def advance(self, seconds: float) -> None:
        self.at += dt.timedelta(seconds=seconds)

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        await asyncio.sleep(0)  # what is ready runs while the time passes
        self.advance(seconds)


# the toy capability: everything it is, in this module
class ToyConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    greeting: str = Field(min_length=1)
    cron: str = "0 * * * *"


TOY_SCHEMA = Migrations("toy")


@TOY_SCHEMA()
def m001_ticks(db: Database) -> None:
    db["toy_ticks"].create({"id": int, "at": float, "greeting": str}, pk="id")


def toy_periodic(root: Root) -> Iterable[Periodic]:
    section: ToyConfig = root.plane.sections["toy"]

    async def tick() -> None:
        row = {"at": root.plane.clock.time(), "greeting": section.greeting}
        root.plane.store.db["toy_ticks"].insert(row)

    yield Schedule("toy/tick", trigger(section.cron), tick, grace=60)


@pytest.fixture
def toy() -> Iterator[Capability]:
    """The room, with its command registered for this test only."""

    @command("toy ticks", permission=VIEW, examples=("toy ticks",))
    class ToyTicks:
        """How often the toy's schedule fired, with the toy's greeting."""

        async def run(self, ctx: Context) -> AsyncIterator[Reply]:
            section: ToyConfig = ctx.engine.plane.sections["toy"]
            count = ctx.engine.store.db["toy_ticks"].count
            yield Result(True, f"{section.greeting}: {count} ticks")

    try:
        yield Capability(
            name="toy",
            sections={"toy": ToyConfig},
            tables=("toy_ticks",),
            schema=TOY_SCHEMA,
            commands=(ToyTicks,),
            periodic=toy_periodic,
        )
    finally:
        del REGISTRY["toy ticks"]


def home_with(tmp_path: Path, text: str) -> Path:
    home = tmp_path / "home"
    home.mkdir()
    (home / "shipbot.yml").write_text(text)
    return home


TOY_YML = "admins: [console:alice]\ntoy: {greeting: hello}\n"


def open_root(home: Path, rooms: Iterable[Capability], clock: ManualClock) -> Root:
    swarm = FakeSwarm()
    return Root.open(home, rooms, clock=clock, servers=Servers({"local": lambda: swarm}))


async def test_a_toy_capability_is_read_scheduled_and_commanded_through_the_root(tmp_path, toy):
    clock = ManualClock()
    root = open_root(home_with(tmp_path, TOY_YML), (*ROOMS, toy), clock)
    try:
        assert root.plane.sections["toy"] == ToyConfig(greeting="hello")
        assert root.plane.clock is clock
        scheduler = root.scheduler()
        assert "toy/tick" in [job.id for job in scheduler.get_jobs()]
        scheduler.start(paused=True)
        toy_job = next(job for job in scheduler.get_jobs() if job.id == "toy/tick")
        assert toy_job.next_run_time == dt.datetime(2026, 12, 7, 11, 0, tzinfo=UTC)
        # at the start: the rounds every room asks for, not the toy's hourly tick
        started = await scheduler.run_due()
        await asyncio.gather(*started)
        assert root.plane.store.db["toy_ticks"].count == 0
        assert result(await say(root.dispatcher, "toy ticks")).title == "hello: 0 ticks"
        clock.advance(30 * 60 + 5)  # 11:00:05
        await asyncio.gather(*await scheduler.run_due())
        rows = list(root.plane.store.db["toy_ticks"].rows)
        assert [(r["at"], r["greeting"]) for r in rows] == [(clock.time(), "hello")]
        assert toy_job.next_run_time == dt.datetime(2026, 12, 7, 12, 0, tzinfo=UTC)
        assert result(await say(root.dispatcher, "toy ticks")).title == "hello: 1 ticks"
        await scheduler.aclose()
    finally:
        root.dispatcher.close()


def test_the_toy_section_is_checked_by_its_own_model_and_unknown_without_its_room(tmp_path, toy):
    home = home_with(tmp_path, "toy: {greeting: ''}\n")
    with pytest.raises(StartError, match=r"shipbot.yml: toy\.greeting: String should have"):
        open_root(home, (*ROOMS, toy), ManualClock())
    (home / "shipbot.yml").write_text(TOY_YML)
    with pytest.raises(StartError, match=r"toy: Extra inputs are not permitted"):
        open_root(home, ROOMS, ManualClock())


def test_the_toy_table_is_migrated_once(tmp_path, toy):
    home = home_with(tmp_path, TOY_YML)
    for _ in range(2):
        root = open_root(home, (*ROOMS, toy), ManualClock())
        applied = root.plane.store.db.execute(
            "SELECT name FROM _sqlite_migrations WHERE migration_set = 'toy'"
        ).fetchall()
        root.dispatcher.close()
        assert applied == [("m001_ticks",)]


async def test_the_heartbeat_goes_through_the_roots_http_factory():
    seen: list[str] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(str(request.url))
        return httpx.Response(204 if request.url.path == "/ok" else 503)

    clients = Clients(transport=httpx.MockTransport(answer))
    assert clients.ping("http://beat.test/ok") is None
    assert clients.ping("http://beat.test/down") == "HTTP 503"
    assert seen == ["http://beat.test/ok", "http://beat.test/down"]


# the one scheduler's rules, on the injected clock
class Runs:
    def __init__(self) -> None:
        self.at: list[dt.datetime] = []
        self.release = asyncio.Event()
        self.release.set()

    async def __call__(self, clock: ManualClock) -> None:
        self.at.append(clock.now())
        await self.release.wait()


async def test_a_late_run_within_the_grace_runs_once_and_beyond_it_is_skipped():
    clock, runs = ManualClock(), Runs()
    scheduler = Scheduler(clock)
    scheduler.add("hourly", trigger("0 * * * *"), runs, (clock,), grace=600)
    scheduler.start(paused=True)
    clock.advance(3 * 3600)  # 13:30: three fires missed, the last (13:00) 30 min late
    assert await scheduler.run_due() == []
    assert runs.at == []
    (job,) = scheduler.get_jobs()
    assert job.next_run_time == dt.datetime(2026, 12, 7, 14, 0, tzinfo=UTC)
    clock.advance(30 * 60 + 300)  # 14:05: 5 min late, within the grace
    await asyncio.gather(*await scheduler.run_due())
    assert runs.at == [dt.datetime(2026, 12, 7, 14, 5, tzinfo=UTC)]
    await scheduler.aclose()


async def test_a_job_still_running_is_not_started_again():
    clock, runs = ManualClock(), Runs()
    runs.release.clear()
    scheduler = Scheduler(clock)
    scheduler.add("round", Every(5), runs, (clock,))
    scheduler.start(paused=True)
    (first,) = await scheduler.run_due()
    await asyncio.sleep(0)
    clock.advance(5)
    assert await scheduler.run_due() == []  # the first run still holds it
    runs.release.set()
    await first
    clock.advance(5)
    (second,) = await scheduler.run_due()
    await second
    await scheduler.aclose()
    assert runs.at == [START, START + dt.timedelta(seconds=10)]


async def test_the_loop_waits_on_the_clock_and_stops_with_its_watchers():
    clock, runs = ManualClock(), Runs()
    watched = asyncio.Event()

    async def watcher() -> None:
        watched.set()
        await asyncio.Event().wait()

    scheduler = Scheduler(clock)
    scheduler.add("round", Every(30), runs, (clock,))
    scheduler.watch("w", watcher)
    scheduler.start()
    for _ in range(1000):  # a deadline in loop turns: the clock moves, nobody sleeps
        if len(runs.at) >= 3:
            break
        await asyncio.sleep(0)
    await scheduler.aclose()
    assert watched.is_set()
    assert runs.at[:3] == [START + dt.timedelta(seconds=s) for s in (0, 30, 60)]
    assert clock.slept and max(clock.slept) <= 1.0  # never waits past MAX_WAIT at once
