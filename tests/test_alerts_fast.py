"""Failure alerts on the in-memory swarm: node down and drained, below replicas, OOM kills,
crash loops, disk and memory; each posted once and closed by a recovery post; the event
stream reopened from its cursor with nothing handled twice. And the probe's parser."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from core.config import AlertsConfig
from core.deploy.deploy import deploy
from core.deploy.resolve import resolve
from core.plane import Plane
from core.secrets import Vault
from core.store import App, Store
from core.swarm.servers import Servers
from core.swarm.testing import HEALTHY, STUCK, UNHEALTHY, FakeSwarm
from core.swarm.watch_api import parse_usage, since_arg
from core.watch.alert_rules import Post
from core.watch.alerts import AlertWatch, engine_time
from tests.clock import SwarmSteps
from tests.fake_plane import WEB, drain, fast_swarm, outcome_of
from tests.fast_plane import register

CONFIG = AlertsConfig(
    crash_restarts=3,
    crash_window_seconds=120,
    below_replicas_seconds=30,
    recover_seconds=20,
    disk_percent=90,
    memory_percent=80,
    usage_seconds=1e-9,  # measured every round
    guard_seconds=60,
)


@pytest.fixture
def fake() -> FakeSwarm:
    return fast_swarm()


@pytest.fixture
def plane(tmp_path: Path, fake: FakeSwarm) -> Iterator[Plane]:
    store = Store(tmp_path / "shipbot.db")
    folder = tmp_path / "web"
    folder.mkdir()
    (folder / "app.yml").write_text(WEB)
    register(store, App("web", "path", str(folder), None, "console:alice", time.time()))
    yield Plane(
        store,
        Vault(Fernet.generate_key()),
        Servers({"local": lambda: fake}),
        tmp_path,
        clock=SwarmSteps(fake),
    )
    store.close()


async def ship(plane: Plane, tag: str) -> None:
    resolved = await resolve(plane, "web", None, tag)
    assert outcome_of(await drain(deploy(plane, resolved, user="console:alice"))).ok


def watcher(plane: Plane, fake: FakeSwarm, posts: list[Post], config=CONFIG) -> AlertWatch:
    async def client():
        return await plane.servers.client("local")

    return AlertWatch("local", client, plane.store, config, posts.append, clock=SwarmSteps(fake))


def titles(posts: list[Post]) -> list[str]:
    return [p.outcome.title for p in posts]


async def rounds(watch: AlertWatch, fake: FakeSwarm, steps: int, every: int = 1) -> list[Post]:
    """``steps`` seconds of Swarm, a check every ``every``; what those checks posted."""
    out = []
    for n in range(steps):
        fake.step()
        if n % every == 0:
            out += await watch.check()
    return out


async def test_node_down_then_ready_and_drained_then_active(plane, fake):
    await ship(plane, "1")
    posts: list[Post] = []
    watch = watcher(plane, fake, posts)
    assert await watch.check() == []
    fake.node_list[0]["Status"]["State"] = "down"
    first = await watch.check()
    assert titles(first) == ["🔌 node fake-1 (node1) of server local is down"]
    assert first[0].app is None and first[0].outcome.fields["server"] == "local"
    assert await watch.check() == []  # once
    fake.node_list[0]["Status"]["State"] = "ready"
    fake.node_list[0]["Spec"]["Availability"] = "drain"
    second = titles(await watch.check())
    assert second == [
        "✅ node fake-1 (node1) of server local is ready again; the alert is closed",
        "🚧 node fake-1 (node1) of server local is set to drain: its tasks move away",
    ]
    assert await watch.check() == []
    fake.node_list[0]["Spec"]["Availability"] = "active"
    assert titles(await watch.check()) == [
        "✅ node fake-1 (node1) of server local is active again; the alert is closed"
    ]
    assert plane.store.open_alerts() == []


async def test_below_replicas_only_after_its_threshold_then_recovery(plane, fake):
    await ship(plane, "1")
    posts: list[Post] = []
    watch = watcher(plane, fake, posts)
    fake.behave("web:1", STUCK)  # new tasks never finish starting
    spec = fake.inspect_service("web-production")["Spec"]
    spec["Mode"]["Replicated"]["Replicas"] = 3
    fake.update_service(spec)  # same template: no rollout, a third task that never runs
    early = await rounds(watch, fake, 25, every=5)
    assert early == []  # 2/3 for less than 30 s is no alert yet
    late = await rounds(watch, fake, 20, every=2)
    assert len(late) == 1, titles(late)
    assert late[0].outcome.title.startswith("📉 web (production) on local runs 2 of 3 replicas")
    assert (late[0].app, late[0].env) == ("web", "production")
    assert [a["kind"] for a in plane.store.open_alerts()] == ["replicas"]
    fake.behave("web:1", HEALTHY)
    back = await rounds(watch, fake, 5)
    assert titles(back) == [
        "✅ web (production) on local is back at 3/3 replicas; the alert is closed"
    ]
    assert plane.store.open_alerts() == []


async def test_oom_kill_from_the_event_stream_once_then_recovery(plane, fake):
    await ship(plane, "1")
    posts: list[Post] = []
    watch = watcher(plane, fake, posts)
    fake.oom("web-production")
    events = list(fake.events(None))
    assert [e["Action"] for e in events] == ["oom", "die"]
    assert watch.absorb(fake, events) is True
    assert watch.absorb(fake, events) is False  # the same events again: behind the cursor
    first = await watch.check()
    assert len(first) == 1
    oom = first[0]
    assert oom.outcome.title == (
        "💥 web (production) on local: a task was killed for running out of memory (OOM)"
    )
    assert oom.outcome.details[0].startswith("container ")
    assert "was OOM-killed at" in oom.outcome.details[0]
    assert (oom.app, oom.env) == ("web", "production")
    # every check reads the tasks, which is a second of the fake's: 2 s a round
    assert await rounds(watch, fake, 5) == []  # replaced, but not quiet for 20 s yet
    assert titles(await rounds(watch, fake, 10)) == [
        "✅ web (production) on local: no OOM kill for 20s and 2/2 running; the OOM alert is closed"
    ]
    assert plane.store.alert_cursor("local")[1] == 2


async def test_crash_loop_posted_once_with_exit_code_and_log_then_recovery(plane, fake):
    await ship(plane, "1")
    posts: list[Post] = []
    watch = watcher(plane, fake, posts)
    fake.behave("web:1", UNHEALTHY)  # every task fails its check, is killed, restarts
    looping = await rounds(watch, fake, 40)
    assert len(looping) == 1, titles(looping)
    alert = looping[0].outcome
    assert alert.title.startswith("🔁 web (production) on local is crash-looping: ")
    assert alert.title.endswith("the last with exit code 137")
    assert alert.fields["exit code"] == "137" and alert.fields["server"] == "local"
    assert alert.log_tail == ["listening on :9999"]
    fake.behave("web:1", HEALTHY)
    healed = await rounds(watch, fake, 40)
    assert titles(healed) == [
        "✅ web (production) on local recovered: 2/2 running, no task failed for 20s; the "
        "crash-loop alert is closed"
    ]


async def test_a_failed_deploy_rolled_back_by_swarm_is_no_crash_loop(plane, fake):
    await ship(plane, "1")
    posts: list[Post] = []
    watch = watcher(plane, fake, posts)
    fake.behave("web:2", UNHEALTHY)
    resolved = await resolve(plane, "web", None, "2")
    assert not outcome_of(await drain(deploy(plane, resolved, user="console:alice"))).ok
    assert await rounds(watch, fake, 10) == []  # the deploy said so; no alert on release 2


async def test_disk_and_memory_thresholds(plane, fake):
    await ship(plane, "1")
    posts: list[Post] = []
    watch = watcher(plane, fake, posts)
    fake.usage = {"node1": {"disk_percent": 95.5, "memory_percent": 40.0}}
    first = await watch.check()
    assert titles(first) == [
        "💽 node fake-1 (node1) of server local: disk (the engine's data root) 95.5% used "
        "(limit 90%)"
    ]
    assert first[0].outcome.details == ["apps on it: no app tasks"]  # the fake has no NodeID
    fake.usage = {"node1": {"disk_percent": 96.0, "memory_percent": 85.0}}
    assert titles(await watch.check()) == [
        "💽 node fake-1 (node1) of server local: memory 85% used (limit 80%)"
    ]
    fake.usage = {}  # not measured this time: the alerts stand, nothing posted
    assert await watch.check() == []
    assert len(plane.store.open_alerts()) == 2
    fake.usage = {"node1": {"disk_percent": 50.0, "memory_percent": 30.0}}
    assert titles(await watch.check()) == [
        "✅ node fake-1 (node1) of server local: disk (the engine's data root) 50% used, "
        "under 90%; the alert is closed",
        "✅ node fake-1 (node1) of server local: memory 30% used, under 80%; the alert is closed",
    ]


async def test_alerts_survive_a_new_watcher_and_are_not_posted_again(plane, fake):
    await ship(plane, "1")
    posts: list[Post] = []
    fake.node_list[0]["Status"]["State"] = "down"
    assert len(await watcher(plane, fake, posts).check()) == 1
    # a restart: a new watcher over the same store says nothing new
    assert await watcher(plane, fake, posts).check() == []
    fake.node_list[0]["Status"]["State"] = "ready"
    assert len(await watcher(plane, fake, posts).check()) == 1


async def test_stream_reopened_from_its_cursor_handles_each_event_once(plane, fake):
    await ship(plane, "1")
    posts: list[Post] = []
    # three OOM kills would also be a crash loop: only the stream is under test here
    watch = watcher(plane, fake, posts, CONFIG.model_copy(update={"crash_restarts": 10}))
    follower = asyncio.create_task(watch.follow())
    try:
        for _ in range(3):  # the fake's stream ends after what it has: a drop each time
            fake.oom("web-production")
            fake.step()
            deadline = time.monotonic() + 5
            while plane.store.alert_cursor("local") is None or (
                plane.store.alert_cursor("local")[0] < fake.event_log[-1]["timeNano"]
            ):
                assert time.monotonic() < deadline
                await asyncio.sleep(0.005)
        drops, deadline = watch.drops, time.monotonic() + 5
        while watch.drops < drops + 3:
            assert time.monotonic() < deadline, f"{watch.drops - drops} of 3 reopenings"
            await asyncio.sleep(0.005)
    finally:
        follower.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await follower
    assert len(watch.handled) == len(fake.event_log) == 6
    assert len(set(watch.handled)) == 6
    assert plane.store.alert_cursor("local") == (fake.event_log[-1]["timeNano"], 6)
    assert titles(await watch.check()) == [
        "💥 web (production) on local: a task was killed for running out of memory (OOM)"
    ]


def test_probe_output_parsed():
    lines = [
        "overlay              264212084  31677036  74713876  30% /data",
        "MemTotal:        8000000 kB",
        "MemAvailable:    2000000 kB",
    ]
    assert parse_usage(lines) == {
        "disk_total_kb": 264212084.0,
        "disk_percent": 29.8,
        "memory_total_kb": 8000000.0,
        "memory_percent": 75.0,
    }
    assert parse_usage(["garbage"]) == {}


def test_engine_times_and_since():
    assert engine_time("2023-11-14T22:13:20.500000000Z") == 1700000000.5
    assert engine_time("2023-11-14T22:13:20Z") == 1700000000.0
    assert since_arg(1700000000_000000042) == "1700000000.000000042"


async def test_an_oom_kill_whose_event_was_lost_is_found_on_its_task(plane, fake):
    await ship(plane, "1")
    posts: list[Post] = []
    watch = watcher(plane, fake, posts)
    fake.oom("web-production")  # the events are never read: the engine's buffer moved on
    (oom,) = await watch.check()
    assert oom.outcome.title == (
        "💥 web (production) on local: a task was killed for running out of memory (OOM)"
    )
    assert oom.outcome.details[0] == "a task's container was OOM-killed (exit code 137)"
    assert await rounds(watch, fake, 3) == []  # the same kill is not news again


async def test_a_crash_loop_that_ended_before_the_watcher_started_is_not_alerted(plane, fake):
    await ship(plane, "1")
    fake.behave("web:1", UNHEALTHY)
    for _ in range(40):  # it loops while no watcher runs (no `shipbot serve` yet)
        fake.step()
    fake.behave("web:1", HEALTHY)
    for _ in range(CONFIG.recover_seconds + 5):  # and is healthy again before serve starts
        fake.step()
    posts: list[Post] = []
    watch = watcher(plane, fake, posts)
    failed = [t for t in fake.tasks("web-production") if t["Status"]["State"] == "failed"]
    assert len(failed) >= CONFIG.crash_restarts  # still inside the crash window
    assert await rounds(watch, fake, 30) == []  # no alert, so no recovery a second later
    assert posts == [] and plane.store.open_alerts() == []


async def test_an_oom_kill_long_before_the_watcher_started_is_not_alerted(plane, fake):
    await ship(plane, "1")
    fake.oom("web-production")
    for _ in range(CONFIG.recover_seconds + 5):  # its task was replaced and runs since
        fake.step()
    posts: list[Post] = []
    watch = watcher(plane, fake, posts)
    assert await rounds(watch, fake, 10) == []
    assert plane.store.open_alerts() == []
