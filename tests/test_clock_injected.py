"""Time is injected: the test clocks themselves, and what the product does on a clock it is
given (locks, the outbox's retries, the alert watcher's rounds), with no real waiting."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
from pathlib import Path

import pytest

from commands.notify import Notifier
from commands.replies import Message
from core.config import AlertsConfig, NotifyRoute
from core.store import Store
from core.swarm.testing import FakeSwarm
from core.watch.alerts import AlertWatch
from tests import clock as clocks
from tests.clock import ClockStuck, JumpClock, ManualClock

UTC = dt.UTC


# the test clocks
async def test_a_manual_sleep_ends_only_when_the_clock_passes_its_end():
    clock = ManualClock()
    sleeper = asyncio.create_task(clock.sleep(10))
    await clock.wait_for_sleepers(1)
    clock.advance(9.5)
    await asyncio.sleep(0)
    assert not sleeper.done()
    assert (clock.time(), clock.monotonic()) == (clocks.START + 9.5, 9.5)
    clock.advance(0.5)
    await sleeper
    assert clock.sleepers == 0
    assert clock.now() == dt.datetime.fromtimestamp(clocks.START + 10, UTC)


async def test_an_auto_clock_advances_by_each_sleep():
    clock = ManualClock.at(dt.datetime(2027, 3, 1, 8, 0, tzinfo=UTC), auto=True)
    await clock.sleep(90)
    await clock.sleep(0)
    assert clock.now() == dt.datetime(2027, 3, 1, 8, 1, 30, tzinfo=UTC)
    assert clock.monotonic() == 90


async def test_a_sleep_nobody_advances_fails_instead_of_hanging(monkeypatch):
    monkeypatch.setattr(clocks, "STUCK_SECONDS", 0.05)
    with pytest.raises(ClockStuck, match="a 5s sleep waited 0.05s of real time"):
        await ManualClock().sleep(5)


def test_a_manual_clock_never_goes_back():
    clock = ManualClock.at(dt.datetime(2027, 3, 1, tzinfo=UTC))
    with pytest.raises(AssertionError, match="time only goes forward"):
        clock.advance_to(dt.datetime(2027, 2, 28, tzinfo=UTC))


async def test_a_jump_ends_a_real_sleep_it_covers():
    clock = JumpClock()
    before = clock.monotonic()
    sleeper = asyncio.create_task(clock.sleep(3600))
    await asyncio.sleep(0)  # the sleeper starts waiting
    clock.jump(3600)
    await asyncio.wait_for(sleeper, 1)
    assert clock.monotonic() - before >= 3600
    assert clock.offset == 3600


# the product on its clock
@pytest.fixture
def store(tmp_path: Path):
    clock = ManualClock()
    store = Store(tmp_path / "shipbot.db", clock=clock)
    yield store, clock
    store.close()


def test_a_lock_goes_stale_when_its_heartbeat_is_older_than_the_ttl_on_the_stores_clock(store):
    store, clock = store
    assert store.acquire_lock("web/production", owner="a", what="deploy", ttl=60, host="h") is None
    held = store.acquire_lock("web/production", owner="b", what="deploy", ttl=60, host="h")
    assert held is not None and held["owner"] == "a" and held["acquired_at"] == clock.time()
    clock.advance(59)
    assert store.acquire_lock("web/production", owner="b", what="deploy", ttl=60, host="h")
    clock.advance(1.5)
    assert store.acquire_lock("web/production", owner="b", what="deploy", ttl=60, host="h") is None


async def test_a_failed_delivery_is_retried_after_its_backoff_on_the_clock(store):
    store, clock = store
    notifier = Notifier(store, [NotifyRoute(platform="console", channel="ops", kinds=["alerts"])])
    assert notifier.publish("alerts", "web", "production", Message("node down")) == 1
    sent: list[str] = []
    failing = True

    async def send(channel: str, reply) -> None:
        if failing:
            raise ConnectionError("the chat is away")
        sent.append(f"{channel}: {reply.text}")

    assert await notifier.deliver_due("console", send) == 0  # 1st try failed: retry in 2 s
    failing = False
    clock.advance(1.9)
    assert await notifier.deliver_due("console", send) == 0
    clock.advance(0.1)
    assert await notifier.deliver_due("console", send) == 1
    assert sent == ["ops: node down"]
    (row,) = store._rows("outbox", "1 = 1")
    assert (row["status"], row["attempts"], row["sent_at"]) == ("sent", 1, clocks.START + 2)


async def test_the_alert_watcher_checks_once_every_check_seconds_of_its_clock(store):
    store, clock = store
    swarm = FakeSwarm()
    rounds: list[float] = []

    async def client() -> FakeSwarm:
        return swarm

    async def before() -> None:
        rounds.append(clock.monotonic())

    config = AlertsConfig(check_seconds=30, usage_image=None)
    watch = AlertWatch(
        "local", client, store, config, lambda post: None, clock=clock, before=before
    )
    running = asyncio.create_task(watch.run())

    async def tick(seconds: float) -> None:
        """Advance, then wait until the watcher's three loops pause again: its rounds, the
        event stream's reopening, and the disk probe."""
        clock.advance(seconds)
        await clock.wait_for_sleepers(3)

    try:
        await clock.wait_for_sleepers(3)
        assert rounds == [0.0]
        await tick(1)  # the probe's first measurement asks for a check, a gap later
        assert rounds == [0.0, 1.0]
        await tick(29.5)
        assert rounds == [0.0, 1.0]
        await tick(0.5)
        assert rounds == [0.0, 1.0, 31.0]
        for _ in range(2):
            await tick(30)
        assert rounds == [0.0, 1.0, 31.0, 61.0, 91.0]
    finally:
        running.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await running
