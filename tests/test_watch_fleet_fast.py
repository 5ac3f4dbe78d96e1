"""Watchers on every server, on in-memory swarms: a server added while ``serve`` runs is
watched from the next sync and one removed is not; a managed database and the proxy that
crash-loop alert like an app, named for what they are; helpers and scratch databases are
not watched."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from commands.fleet_watch import Fleet
from core.config import AlertsConfig, DataConfig
from core.data import databases, db_spec
from core.edge.proxy import LABEL_EDGE
from core.errors import EngineUnavailable
from core.names import LABEL_APP, LABEL_ENV, LABEL_PLANE
from core.plane import Plane
from core.secrets import Vault
from core.store import Store
from core.swarm.servers import Servers
from core.swarm.testing import HEALTHY, UNHEALTHY, FakeSwarm
from core.watch.alert_rules import Post
from core.watch.alerts import AlertWatch
from core.watch.subjects import PROXY, subject_of, watched, watched_services, watcher_owns
from tests.clock import ManualClock, SwarmSteps
from tests.fake_plane import drain, outcome_of

CONFIG = AlertsConfig(crash_restarts=3, crash_window_seconds=120, recover_seconds=20)
PLANE = "plane-1"


def labelled(name: str, **labels: str) -> dict:
    return {"Spec": {"Name": name, "Labels": labels}}


def test_what_the_watcher_watches_and_how_it_names_it():
    app = labelled("web-production", **{LABEL_APP: "web", LABEL_ENV: "production"})
    db = labelled("db-orders", **{"shipbot.db": "orders", LABEL_PLANE: PLANE})
    scratch = labelled("db-verify-orders-7", **{"shipbot.db": "verify-orders-7"})
    theirs = labelled("db-orders", **{"shipbot.db": "orders", LABEL_PLANE: "plane-2"})
    edge = labelled("shipbot-edge", **{LABEL_EDGE: "true"})
    other_edge = labelled("shipbot-edge", **{LABEL_EDGE: "true", LABEL_PLANE: "plane-2"})
    helper = labelled("volume-helper", **{"shipbot.volume.helper": "web-data"})

    def sees(service: dict) -> bool:
        return watched(service, PLANE, {"web"}, {"orders"}, "shipbot-edge")

    assert [sees(s) for s in (app, db, scratch, theirs, edge, other_edge, helper)] == [
        True,
        True,
        False,
        False,
        True,
        False,
        False,
    ]
    assert subject_of(app["Spec"]["Labels"]) == ("web", "production")
    labels = {"shipbot.db": "orders", "shipbot.db.kind": "postgres"}
    assert subject_of(labels) == ("database orders", "postgres")
    assert subject_of(edge["Spec"]["Labels"]) == (PROXY, "edge")


@pytest.fixture
def fake() -> FakeSwarm:
    return FakeSwarm()


@pytest.fixture
def plane(tmp_path: Path, fake: FakeSwarm) -> Iterator[Plane]:
    store = Store(tmp_path / "shipbot.db")
    yield Plane(
        store,
        Vault(Fernet.generate_key()),
        Servers({"local": lambda: fake}),
        tmp_path,
        clock=SwarmSteps(fake),
    )
    store.close()


def alert_watch(
    plane: Plane, fake: FakeSwarm, posts: list[Post], config: AlertsConfig = CONFIG
) -> AlertWatch:
    async def client():
        return await plane.servers.client("local")

    return AlertWatch(
        "local",
        client,
        plane.store,
        config,
        posts.append,
        clock=SwarmSteps(fake),
        owns=watcher_owns(plane),
        extra=lambda: watched_services(plane, "local"),
    )


async def rounds(watch: AlertWatch, fake: FakeSwarm, steps: int) -> list[Post]:
    out = []
    for _ in range(steps):
        fake.step()
        out += await watch.check()
    return out


async def test_a_crash_looping_database_alerts_once_naming_it_then_recovers(plane, fake):
    image = db_spec.image_for(DataConfig(), "postgres", db_spec.DEFAULT_VERSIONS["postgres"])
    fake.publish(image)
    made = await drain(
        databases.create(plane, DataConfig(), "postgres", "orders", None, user="console:alice")
    )
    assert outcome_of(made).ok, made
    posts: list[Post] = []
    watch = alert_watch(plane, fake, posts)
    assert await watch.check() == []
    fake.behave(image, UNHEALTHY)
    looping = await rounds(watch, fake, 40)
    assert len(looping) == 1, [p.outcome.title for p in looping]
    title = looping[0].outcome.title
    assert title.startswith("🔁 database orders (postgres) on local is crash-looping: "), title
    assert looping[0].outcome.fields["service"] == "db-orders"
    fake.behave(image, HEALTHY)
    healed = [p.outcome.title for p in await rounds(watch, fake, 40)]
    assert len(healed) == 1 and healed[0].startswith("✅ database orders (postgres) on local")


def run_proxy(plane: Plane, fake: FakeSwarm) -> dict:
    """This plane's proxy, one replica, on the fake engine; its spec."""
    fake.publish("traefik:v3")
    spec = {
        "Name": plane.edge.service,
        "Labels": {LABEL_EDGE: "true", LABEL_PLANE: plane.id},
        "TaskTemplate": {"ContainerSpec": {"Image": "traefik:v3"}},
        "Mode": {"Replicated": {"Replicas": 1}},
    }
    fake.create_service(spec)
    return spec


async def test_a_proxy_below_its_replicas_alerts_naming_the_proxy(plane, fake):
    run_proxy(plane, fake)
    posts: list[Post] = []
    watch = alert_watch(plane, fake, posts)
    fake.behave("traefik:v3", UNHEALTHY)
    looping = await rounds(watch, fake, 40)
    assert [p.outcome.title.split(":")[0] for p in looping] == [
        f"🔁 {PROXY} (edge) on local is crash-looping"
    ]


async def test_a_proxy_scaled_to_none_is_below_its_one_replica_until_it_is_back(plane, fake):
    spec = run_proxy(plane, fake)
    posts: list[Post] = []
    config = CONFIG.model_copy(update={"below_replicas_seconds": 5})
    watch = alert_watch(plane, fake, posts, config)
    assert await rounds(watch, fake, 3) == []
    fake.update_service({**spec, "Mode": {"Replicated": {"Replicas": 0}}})
    stopped = [p.outcome.title for p in await rounds(watch, fake, 40)]
    assert stopped == [f"📉 {PROXY} (edge) on local runs 0 of 1 replicas, for 6s"]
    fake.update_service(spec)
    back = [p.outcome.title for p in await rounds(watch, fake, 10)]
    assert back == [f"✅ {PROXY} (edge) on local is back at 1/1 replicas; the alert is closed"]


class Servers_:
    """The names the fleet is asked to watch, as a test changes them."""

    def __init__(self, *names: str) -> None:
        self.names = list(names)

    def __call__(self) -> list[str]:
        return list(self.names)


async def test_a_server_added_while_serving_is_watched_from_the_next_sync(plane, fake):
    clock = ManualClock()
    swarms = {"local": fake, "eu-1": FakeSwarm()}
    checked: list[str] = []

    def make(server: str) -> AlertWatch:
        async def client():
            checked.append(server)
            return swarms[server]

        return AlertWatch(server, client, plane.store, CONFIG, lambda post: None, clock=clock)

    names = Servers_("local")
    fleet = Fleet(names, make, clock, every=5.0)
    running = asyncio.create_task(fleet.run())
    try:
        async with asyncio.timeout(5):
            while "local" not in checked:
                await asyncio.sleep(0)
            assert fleet.watched == ["local"]
            names.names.append("eu-1")  # `server add` while serve runs
            assert "eu-1" not in checked
            while clock.sleepers < 2:  # the watcher's pause and the fleet's
                await asyncio.sleep(0)
            clock.advance(5.0)
            while "eu-1" not in checked:
                await asyncio.sleep(0)
            assert fleet.watched == ["eu-1", "local"]
            names.names.remove("local")  # `server remove`
            started, stopped = await fleet.sync()
            assert (started, stopped) == ([], ["local"])
            assert fleet.watched == ["eu-1"] and list(fleet.watches) == ["eu-1"]
    finally:
        running.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await running
    assert fleet.watched == []


async def test_a_watcher_that_died_is_started_again(plane, fake):
    made: list[str] = []

    class Dying(AlertWatch):
        async def run(self) -> None:
            raise RuntimeError("a bug in a round")

    def make(server: str) -> AlertWatch:
        made.append(server)
        return Dying(server, None, plane.store, CONFIG, lambda post: None)  # type: ignore[arg-type]

    fleet = Fleet(Servers_("eu-1"), make, ManualClock())
    assert await fleet.sync() == (["eu-1"], [])
    await asyncio.sleep(0)  # the watcher's task runs, and dies
    assert await fleet.sync() == (["eu-1"], [])
    assert made == ["eu-1", "eu-1"]
    await fleet.sync()
    await asyncio.gather(*fleet._tasks.values(), return_exceptions=True)


async def test_a_server_that_does_not_answer_alerts_once_per_outage_then_recovers(plane, fake):
    """Rounds that cannot read the server at all open one alert naming it and when the
    outage began, kept across rounds (and restarts: it is stored); the first round that
    reads it again posts one recovery; a second outage alerts again."""
    posts: list[Post] = []
    watch = alert_watch(plane, fake, posts)
    assert await rounds(watch, fake, 2) == []
    fake.down = True
    for _ in range(5):
        fake.step()
        with pytest.raises(EngineUnavailable):
            await watch.check()
    (away,) = [p.outcome for p in posts]
    assert not away.ok and away.title.startswith("🔌 server local unreachable since ")
    assert away.title.endswith(down_words(fake))
    again = alert_watch(plane, fake, posts)  # a restarted watcher: the outage is known
    with pytest.raises(EngineUnavailable):
        await again.check()
    assert len(posts) == 1
    fake.down = False
    await rounds(again, fake, 3)
    assert [p.outcome.title.split(" (")[0] for p in posts[1:]] == ["✅ server local answers again"]
    fake.down = True
    with pytest.raises(EngineUnavailable):
        await again.check()
    assert [p.outcome.ok for p in posts] == [False, True, False]


def down_words(fake: FakeSwarm) -> str:
    """What the fake engine says while it is down."""
    try:
        fake.services()
    except EngineUnavailable as exc:
        return str(exc)
    raise AssertionError("the fake engine answered")
