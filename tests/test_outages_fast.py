"""A server that does not answer is remembered as an outage (core/swarm/servers.py): the
connect time-out is paid once, later asks are told at once with the time it started, one
connect in the background checks again after ``RETRY_SECONDS``, and one slow server never
holds up another's connect."""

from __future__ import annotations

import threading
import time

import pytest

from core.errors import EngineUnavailable
from core.servers.errors import ServerError
from core.swarm import servers as servers_module
from core.swarm.servers import RETRY_SECONDS, Servers
from core.swarm.testing import FakeSwarm
from tests.clock import ManualClock

DEADLINE = 5.0


class Host:
    """A connector that fails while ``down`` and counts its calls."""

    def __init__(self) -> None:
        self.down = True
        self.calls = 0

    def __call__(self) -> FakeSwarm:
        self.calls += 1
        if self.down:
            raise ServerError("cannot reach server eu-2 over SSH (connection timed out)")
        return FakeSwarm()


def fleet(host: Host) -> tuple[Servers, ManualClock]:
    servers = Servers({})
    servers.lookup = lambda name: host if name == "eu-2" else None  # as added over SSH
    servers.clock = ManualClock()
    return servers, servers.clock


def until(predicate) -> None:
    deadline = time.monotonic() + DEADLINE
    while not predicate():
        assert time.monotonic() < deadline, "not within the deadline"
        time.sleep(0.01)


def test_the_time_out_is_paid_once_then_the_outage_is_told_at_once():
    host = Host()
    servers, clock = fleet(host)
    with pytest.raises(ServerError, match="timed out"):
        servers.connect("eu-2")
    clock.advance(RETRY_SECONDS - 1)
    for _ in range(3):
        with pytest.raises(EngineUnavailable) as told:
            servers.connect("eu-2")
        assert host.calls == 1
    words = str(told.value)
    assert words == (
        "cannot reach server eu-2 over SSH (connection timed out) "
        "(unreachable since 08:00:00 UTC; last tried 29s ago, not tried again for this: "
        "at most every 30s)"
    )


def test_after_the_retry_time_one_background_connect_finds_it_back():
    host = Host()
    servers, clock = fleet(host)
    with pytest.raises(ServerError):
        servers.connect("eu-2")
    host.down = False
    clock.advance(RETRY_SECONDS)
    with pytest.raises(EngineUnavailable):  # this ask is not made to wait: told, and re-dialled
        servers.connect("eu-2")
    until(lambda: "eu-2" not in servers.outages)
    assert host.calls == 2
    assert isinstance(servers.connect("eu-2"), FakeSwarm)
    assert host.calls == 2  # connected by the background dial, kept


def test_a_failed_background_connect_keeps_the_first_failures_time():
    host = Host()
    servers, clock = fleet(host)
    with pytest.raises(ServerError):
        servers.connect("eu-2")
    since = servers.outages["eu-2"].since
    clock.advance(RETRY_SECONDS + 1)
    with pytest.raises(EngineUnavailable):
        servers.connect("eu-2")
    until(lambda: host.calls == 2 and not servers.outages["eu-2"].redialing)
    assert servers.outages["eu-2"].since == since
    with pytest.raises(EngineUnavailable):
        servers.connect("eu-2")
    assert host.calls == 2  # the next retry is RETRY_SECONDS later again


def test_forget_clears_the_outage():
    host = Host()
    servers, _ = fleet(host)
    with pytest.raises(ServerError):
        servers.connect("eu-2")
    host.down = False
    servers.forget("eu-2")  # e.g. its address was changed
    assert isinstance(servers.connect("eu-2"), FakeSwarm)


def test_a_slow_connect_does_not_hold_up_another_server():
    release = threading.Event()

    def slow() -> FakeSwarm:
        assert release.wait(DEADLINE)
        return FakeSwarm()

    servers = Servers({"slow": slow, "fast": FakeSwarm})
    stuck = threading.Thread(target=servers.connect, args=("slow",))
    stuck.start()
    until(lambda: "slow" in servers._dialing)  # noqa: SLF001
    started = time.monotonic()
    assert isinstance(servers.connect("fast"), FakeSwarm)
    assert time.monotonic() - started < 1.0
    release.set()
    stuck.join(DEADLINE)
    assert isinstance(servers.connect("slow"), FakeSwarm)


def test_the_control_planes_own_engine_is_dialled_every_time():
    host = Host()
    servers = Servers({"local": host})
    for calls in (1, 2):
        with pytest.raises(ServerError):
            servers.connect("local")
        assert host.calls == calls
    assert servers.outages == {}


def test_an_unknown_name_is_no_outage():
    servers = Servers({})
    with pytest.raises(servers_module.DeployError, match="no server named 'eu-9'"):
        servers.connect("eu-9")
    assert servers.outages == {}
