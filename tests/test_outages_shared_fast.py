"""Outages shared and found (core/swarm/servers.py, core/swarm/outages.py): asks that
waited for a dial that failed are told, not dialled again; another process (a second
``Servers`` on the same store) is told what the first learned, with since when, until
``RETRY_SECONDS`` after the last try; a kept client whose connection dropped is dialled
again."""

from __future__ import annotations

import threading

import pytest

from core.config import AlertsConfig
from core.errors import EngineUnavailable
from core.servers.errors import ServerError
from core.servers.remote import StoredOutages
from core.store import Store
from core.swarm.outages import RETRY_SECONDS, Outage, ServerAway
from core.swarm.servers import Servers
from core.swarm.testing import FakeSwarm
from core.watch.alert_rules import Post
from core.watch.alerts import AlertWatch
from tests.clock import ManualClock
from tests.test_outages_fast import DEADLINE, Host, until


class Slow(Host):
    """A connector that holds every call until ``release`` is set."""

    def __init__(self) -> None:
        super().__init__()
        self.release = threading.Event()

    def __call__(self) -> FakeSwarm:
        assert self.release.wait(DEADLINE)
        return super().__call__()


class Droppable(FakeSwarm):
    """A remote swarm client whose connection a test cuts."""

    def __init__(self) -> None:
        super().__init__()
        self.cut = False
        self.closed = False

    def lost(self) -> bool:
        return self.cut

    def close(self) -> None:
        self.closed = True


def process(host: Host, store: Store, clock: ManualClock) -> Servers:
    """One shipbot process's registry: its own memory, the store shared."""
    servers = Servers({})
    servers.lookup = lambda name: host if name == "eu-2" else None
    servers.clock = clock
    servers.memory = StoredOutages(store)
    return servers


@pytest.fixture
def store(tmp_path):
    found = Store(tmp_path / "shipbot.db")
    yield found
    found.db.conn.close()


def test_asks_that_waited_for_a_failed_dial_are_told_not_dialled_again(store):
    host, clock = Slow(), ManualClock()
    servers = process(host, store, clock)
    told: list[BaseException] = []

    def ask() -> None:
        try:
            servers.connect("eu-2")
        except (ServerError, EngineUnavailable) as exc:
            told.append(exc)

    asks = [threading.Thread(target=ask) for _ in range(3)]
    for thread in asks:
        thread.start()
    until(lambda: servers._dialing.get("eu-2") is not None)  # noqa: SLF001
    host.release.set()
    for thread in asks:
        thread.join(DEADLINE)
    assert host.calls == 1  # one time-out paid, not one per database asked about
    assert sorted(type(exc).__name__ for exc in told) == ["ServerAway", "ServerAway", "ServerError"]


def test_another_process_is_told_since_when_and_not_dialled_until_the_retry_time(store):
    host, clock = Host(), ManualClock()
    first = process(host, store, clock)
    with pytest.raises(ServerError):
        first.connect("eu-2")
    clock.advance(12)
    second = process(host, store, clock)  # the next `shipbot chat`
    with pytest.raises(EngineUnavailable) as told:
        second.connect("eu-2")
    assert host.calls == 1
    assert told.value.outage.error == (  # what an alert quotes: the failure alone
        "cannot reach server eu-2 over SSH (connection timed out)"
    )
    assert str(told.value).endswith(
        "(unreachable since 08:00:00 UTC; last tried 12s ago, not tried again for this: "
        "at most every 30s)"
    )
    clock.advance(RETRY_SECONDS - 12)
    third = process(host, store, clock)  # the shared verdict has expired: dialled again
    with pytest.raises(ServerError):
        third.connect("eu-2")
    assert host.calls == 2
    assert store.server_outage("eu-2")["since"] == clock.time() - RETRY_SECONDS  # one outage
    assert store.server_outage("eu-2")["tried"] == clock.time()


def test_a_server_that_answers_again_clears_the_shared_outage(store):
    host, clock = Host(), ManualClock()
    with pytest.raises(ServerError):
        process(host, store, clock).connect("eu-2")
    host.down = False
    clock.advance(RETRY_SECONDS)
    assert isinstance(process(host, store, clock).connect("eu-2"), FakeSwarm)
    assert store.server_outage("eu-2") is None
    assert isinstance(process(host, store, clock).connect("eu-2"), FakeSwarm)
    assert host.calls == 3


def test_failures_far_apart_are_two_outages(store):
    host, clock = Host(), ManualClock()
    with pytest.raises(ServerError):
        process(host, store, clock).connect("eu-2")
    clock.advance(3600)  # nobody asked for an hour: whether it answered meanwhile is unknown
    with pytest.raises(ServerError):
        process(host, store, clock).connect("eu-2")
    assert store.server_outage("eu-2")["since"] == clock.time()


def test_a_kept_client_whose_connection_dropped_is_dialled_again(store):
    clock = ManualClock()
    made: list[Droppable] = []

    def connector() -> FakeSwarm:
        if made and made[-1].cut:
            raise ServerError("cannot reach server eu-2 over SSH (connection timed out)")
        made.append(Droppable())
        return made[-1]

    servers = Servers({})
    servers.lookup = lambda name: connector
    servers.clock = clock
    servers.memory = StoredOutages(store)
    kept = servers.connect("eu-2")
    assert servers.connect("eu-2") is kept
    made[-1].cut = True  # the host stopped: sshd's end closed
    with pytest.raises(ServerError, match="timed out"):
        servers.connect("eu-2")
    assert made[0].closed
    assert store.server_outage("eu-2") is not None  # the outage other processes are told


async def test_an_alert_for_a_remembered_outage_quotes_the_failure_once(store):
    clock = ManualClock()
    outage = Outage(clock.time() - 40, "SSH timed out after 10 s", clock.time() - 5, 30.0)

    async def away() -> FakeSwarm:
        raise ServerAway(outage, clock.time())

    posts: list[Post] = []
    watch = AlertWatch("eu-2", away, store, AlertsConfig(), posts.append, clock=clock)
    with pytest.raises(ServerAway):
        await watch.check()
    (post,) = posts
    assert post.outcome.title == (
        "🔌 server eu-2 unreachable since 2027-01-15 08:00 UTC: SSH timed out after 10 s"
    )
