"""The certificate watcher `serve` runs, on every server (issue 23): each server's own proxy
is read through that server's engine and shaken hands with at its address; a server that
cannot be read, or is slow, is named once per outage and once when it is back, while the
others are checked as usual and its domains' states are kept; a server added while it
runs is read from the next round. Fake swarms per server; a loopback TLS server stands in
for each server's Traefik (the handshakes tell the domains apart by SNI)."""

from __future__ import annotations

import asyncio
import datetime as dt
import threading
import time
from pathlib import Path

import pytest

from commands.catalog.certs import watch
from commands.notify import Notifier
from commands.replies import Message, decode
from core.config import DnsConfig, EdgeConfig, NotifyRoute
from core.engine import Engine
from core.errors import EngineUnavailable
from core.names import LABEL_PLANE
from core.secrets import Vault
from core.servers.where import public_address, public_addresses
from core.store import Store
from core.swarm.servers import RETRY_SECONDS, Servers
from core.swarm.testing import FakeSwarm
from core.watch.certs import AWAY, CertState, Reading, step
from core.watch.certs_fleet import FleetReader, edge_of
from tests.certgen import make_ca, make_leaf, tls_server
from tests.clock import ManualClock
from tests.test_certs import fake_service
from tests.test_servers import row

NOW = dt.datetime(2026, 3, 1, tzinfo=dt.UTC)
ASKED: list[str] = []  # the SNI names the proxies were asked for
DOMAINS = {"local": "home.example.com", "eu-1": "eu1.example.com", "eu-2": "eu2.example.com"}


def routed(swarm: FakeSwarm, plane_id: str, domain: str) -> None:
    rule = {"traefik.http.routers.shop-production.rule": f"Host(`{domain}`)"}
    labels = {"shipbot.app": "shop", "shipbot.env": "production", LABEL_PLANE: plane_id, **rule}
    fake_service(swarm, "shop-production", "shop:1", labels)


@pytest.fixture
def fleet(tmp_path: Path):
    """`local` and eu-1 (added from chat, answering at 127.0.0.1) each route one domain;
    eu-2 and eu-3 are connected through the same lookup as servers added from chat."""
    swarms = {name: FakeSwarm() for name in ("local", "eu-1", "eu-2", "eu-3")}
    for swarm in swarms.values():
        swarm.add_image("shop:1")
    home = tmp_path / "home"
    home.mkdir()
    servers = Servers({"local": lambda: swarms["local"]})
    down: set[str] = set()

    def lookup(name: str):
        def connect():
            if name in down:
                raise EngineUnavailable(f"cannot reach the Docker engine of {name}")
            return swarms[name]

        return connect if name in swarms else None

    engine = Engine(
        Store(home / "shipbot.db"),
        servers=servers,
        home=home,
        vault=Vault.open(home),
        clock=ManualClock.at(NOW),
    )
    servers.lookup = lookup  # in place of the SSH logins the engine set up
    plane = engine.plane
    for name in ("eu-1", "eu-2"):
        engine.store.add_server({**row(name), "url": "ssh://root@127.0.0.1"})
    for name, domain in DOMAINS.items():
        routed(swarms[name], plane.id, domain)
    notifier = Notifier(
        engine.store, [NotifyRoute(platform="console", channel="ops", kinds=["certs"])]
    )
    ca = make_ca("Pebble Intermediate CA 6fc6bf")
    leaves = {
        d: make_leaf(ca, [d], serial=0x100 + i, not_before=NOW, not_after=NOW + dt.timedelta(90))
        for i, d in enumerate([*DOMAINS.values(), "eu3.example.com"])
    }
    default = make_leaf(ca, ["traefik.default"], cn="TRAEFIK DEFAULT CERT", serial=9)
    with tls_server({"*": default, **leaves}, tmp_path, ASKED) as port:
        plane.edge = EdgeConfig(https_port=port, address="127.0.0.1")
        yield engine, swarms, notifier, down
    ASKED.clear()
    engine.close()


def outbox(engine: Engine) -> list[str]:
    rows = engine.store.due_messages("console", now=NOW.timestamp() + 10**9, limit=100)
    return [decode(r["payload"]).text for r in rows]


async def once_back(engine: Engine, watcher) -> list:
    """The first round that reads a server again after its outage: the engine dials it
    again only once the retry window passed on the plane's clock, and off the round that
    found the window over (core/swarm/servers.py), so a few rounds may find it still away."""
    engine.plane.clock.advance(RETRY_SECONDS)
    deadline = time.monotonic() + 10
    while not (posts := await watcher.check()):
        assert time.monotonic() < deadline, "the server was not dialled again"
        await asyncio.sleep(0.01)
    return posts


def firsts(posts) -> list[str]:
    return [p.text.split(", valid")[0] for p in posts]


async def test_each_servers_proxy_is_read_and_one_away_is_named_once(fleet):
    engine, swarms, notifier, down = fleet
    watcher = watch(engine.plane, notifier)
    down.add("eu-2")
    first = await watcher.check()
    assert firsts(first) == [
        "⚠️ certificates not checked on server eu-2: cannot reach the Docker engine of eu-2; "
        "the other servers' still are",
        "🔒 certificate issued for eu1.example.com on server eu-1",
        "🔒 certificate issued for home.example.com",
    ]
    assert await watcher.check() == []  # still away: not named again
    assert await watcher.check() == []
    down.discard("eu-2")
    back = await once_back(engine, watcher)
    assert firsts(back) == [
        "✅ server eu-2 answers again: its certificates are checked again",
        "🔒 certificate issued for eu2.example.com on server eu-2",
    ]
    assert outbox(engine) == [p.text for p in first + back]
    # each server was read through its own engine: eu-1's domain is eu-1's service's
    assert [s["Spec"]["Name"] for s in swarms["eu-1"].services()] == ["shop-production"]


async def test_a_server_away_keeps_its_domains_and_their_alerts(fleet):
    engine, swarms, notifier, down = fleet
    watcher = watch(engine.plane, notifier)
    assert len(await watcher.check()) == 3  # every domain issued, each once
    down.add("eu-1")
    engine.plane.servers.forget("eu-1")
    away = await watcher.check()
    assert [p.text for p in away] == [
        "⚠️ certificates not checked on server eu-1: cannot reach the Docker engine of eu-1; "
        "the other servers' still are"
    ]
    states = {s["domain"]: s for s in engine.store.cert_states()}
    assert states["eu1.example.com"]["serial"] == "101"  # kept while eu-1 is away
    assert (states["@eu-1"]["alert"], states["@eu-1"]["error"]) == (
        AWAY,
        "cannot reach the Docker engine of eu-1",
    )
    down.discard("eu-1")
    # back: its domain's certificate is the one seen before, so nothing is issued again
    assert [p.text for p in await once_back(engine, watcher)] == [
        "✅ server eu-1 answers again: its certificates are checked again"
    ]
    assert "@eu-1" not in {s["domain"] for s in engine.store.cert_states()}


async def test_a_server_added_while_it_runs_is_read_from_the_next_round(fleet):
    engine, swarms, notifier, _ = fleet
    watcher = watch(engine.plane, notifier)
    await watcher.check()
    routed(swarms["eu-3"], engine.plane.id, "eu3.example.com")
    engine.store.add_server({**row("eu-3"), "url": "ssh://root@127.0.0.1"})
    assert firsts(await watcher.check()) == [
        "🔒 certificate issued for eu3.example.com on server eu-3"
    ]
    engine.store.remove_server("eu-3")
    assert await watcher.check() == []
    assert "eu3.example.com" not in {s["domain"] for s in engine.store.cert_states()}


async def test_a_slow_server_is_away_after_its_time_out_and_the_others_are_read(fleet):
    engine, swarms, _, _ = fleet
    release = threading.Event()
    listing = swarms["eu-2"].services

    def hangs(*args, **kwargs):  # the engine answers, but only once the test is over
        release.wait(5)
        return listing(*args, **kwargs)

    swarms["eu-2"].services = hangs
    plane = engine.plane
    reader = FleetReader(
        lambda: ["local", "eu-1", "eu-2"], lambda n: edge_of(plane, n), own="local", timeout=0.2
    )
    try:
        read = await reader.read()
    finally:
        release.set()
    assert read.away == {"eu-2": "it did not answer within 0.2 s"}
    assert sorted((f.server, f.domain) for f in read.facts) == [
        ("eu-1", "eu1.example.com"),
        ("local", "home.example.com"),
    ]
    assert read.servers == ("local", "eu-1", "eu-2")


def test_step_names_servers_away_once_and_drops_one_removed():
    eu2 = CertState("", "", "@eu-2", alert=AWAY, error="SSH timed out")
    kept = CertState("shop", "production", "eu2.example.com", serial="a1")
    posts, states = step([], {"@eu-2": eu2, kept.domain: kept}, NOW, away={"eu-2": "x"})
    assert posts == [] and states == {"@eu-2": eu2, kept.domain: kept}
    # eu-2 was removed while away: no "answers again", and its rows go
    posts, states = step([], {"@eu-2": eu2, kept.domain: kept}, NOW, servers=("local",))
    assert posts == [] and states == {}
    # an empty reading of one edge, as before: nothing away, nothing kept
    assert Reading([]).away == {} and Reading([]).servers is None


async def test_posts_of_a_server_away_reach_every_certs_route(fleet):
    engine, _, notifier, down = fleet
    down.add("eu-2")
    await watch(engine.plane, notifier).check()
    rows = engine.store.due_messages("console", now=NOW.timestamp() + 10**9, limit=100)
    assert {(r["channel"], r["kind"]) for r in rows} == {("ops", "certs")}
    assert Message(
        "⚠️ certificates not checked on server eu-2: cannot reach the Docker engine of eu-2; "
        "the other servers' still are"
    ) in [decode(r["payload"]) for r in rows]


NOWHERE = "127.0.0.9"  # nothing listens there


def moved(engine: Engine, server: str, host: str) -> None:
    """``server`` now logs in over SSH at ``host``."""
    engine.store.remove_server(server)
    engine.store.add_server({**row(server), "url": f"ssh://root@{host}"})


def test_a_servers_public_addresses_come_before_its_ssh_host(fleet):
    engine = fleet[0]
    plane, store = engine.plane, engine.store
    moved(engine, "eu-1", NOWHERE)
    assert public_addresses(plane, "local") == ["127.0.0.1"]  # edge.address
    assert public_addresses(plane, "eu-1") == [NOWHERE]
    dns = {"eu-1": ["203.0.113.7"], "eu-2": ["203.0.113.8"]}
    assert public_addresses(plane, "eu-1", dns) == ["203.0.113.7", NOWHERE]
    store.set_server_addresses("eu-1", ["198.51.100.4", "2001:db8::4", NOWHERE])
    assert public_addresses(plane, "eu-1", dns) == ["198.51.100.4", "2001:db8::4", NOWHERE]
    assert public_address(plane, "eu-1") == "198.51.100.4"


async def test_a_servers_proxy_is_read_at_its_recorded_address_by_the_domains_name(fleet):
    engine, _, notifier, _ = fleet
    moved(engine, "eu-1", NOWHERE)
    engine.store.set_server_addresses("eu-1", ["127.0.0.1"])
    posts = await watch(engine.plane, notifier).check()
    assert firsts(posts) == [
        "🔒 certificate issued for eu1.example.com on server eu-1",
        "🔒 certificate issued for eu2.example.com on server eu-2",
        "🔒 certificate issued for home.example.com",
    ]
    assert sorted(ASKED) == ["eu1.example.com", "eu2.example.com", "home.example.com"]


async def test_shipbot_yml_dns_servers_is_where_a_server_without_recorded_ones_is_read(fleet):
    engine, _, notifier, _ = fleet
    moved(engine, "eu-1", NOWHERE)
    assert firsts(await watch(engine.plane, notifier).check()) == [
        "🔒 certificate issued for eu2.example.com on server eu-2",
        "🔒 certificate issued for home.example.com",
    ]  # eu-1's proxy is not at its SSH host: no certificate read there
    dns = DnsConfig(zone="example.com", servers={"eu-1": ["127.0.0.1"]})
    assert firsts(await watch(engine.plane, notifier, dns=dns).check()) == [
        "🔒 certificate issued for eu1.example.com on server eu-1"
    ]


async def test_the_ssh_host_is_read_when_no_public_address_answers(fleet):
    engine, _, notifier, _ = fleet
    engine.store.set_server_addresses("eu-1", [NOWHERE])
    dns = DnsConfig(zone="example.com", servers={"eu-2": [NOWHERE]})
    assert firsts(await watch(engine.plane, notifier, dns=dns).check()) == [
        "🔒 certificate issued for eu1.example.com on server eu-1",
        "🔒 certificate issued for eu2.example.com on server eu-2",
        "🔒 certificate issued for home.example.com",
    ]
