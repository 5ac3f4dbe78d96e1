"""Each server's own edge (issue 23): `proxy setup|status --server S` acts on S's Traefik
only, and `certs --server S` reads S's proxy (its log for ACME outcomes, a handshake at S's
address); an unknown or unreachable server is named. Two fake swarms, `local` and `eu-1`,
through the real dispatcher; a loopback TLS server stands in for eu-1's Traefik."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from commands.dispatch import Dispatcher
from commands.replies import Message
from core.config import ControlConfig, EdgeConfig
from core.engine import Engine
from core.errors import EngineUnavailable
from core.names import LABEL_PLANE
from core.secrets import Vault
from core.store import Store
from core.swarm import running_tasks
from core.swarm.servers import Servers
from core.swarm.testing import FakeSwarm
from tests.certgen import make_ca, make_leaf, tls_server
from tests.chat import failure, result, say, table
from tests.clock import SwarmSteps
from tests.fast_plane import fake_swarm
from tests.test_certs import fake_service
from tests.test_servers import ADMIN, row


@pytest.fixture
def fleet(tmp_path: Path):
    local = fake_swarm("traefik:v3", "shop:1")
    eu = fake_swarm("traefik:v3", "shop:1")
    home = tmp_path / "home"
    home.mkdir()
    engine = Engine(
        Store(home / "shipbot.db"),
        servers=Servers({"local": lambda: local, "eu-1": lambda: eu}),
        home=home,
        vault=Vault.open(home),
        clock=SwarmSteps(local, eu),
    )
    # eu-1 as `server add` records it: its proxy answers at its SSH address's host
    engine.store.add_server({**row("eu-1"), "url": "ssh://root@127.0.0.1"})
    plane = engine.plane
    probed: list[str] = []

    def ready(address: str, port: int) -> bool:  # the control plane's own edge only
        probed.append(address)
        return bool(running_tasks(local.tasks(plane.edge.service)))

    plane.edge_ready = ready
    bot = Dispatcher(engine, ControlConfig(admins=[ADMIN]))
    yield bot, local, eu, probed
    bot.close()


async def test_proxy_setup_and_status_act_on_the_server_named(fleet):
    bot, local, eu, probed = fleet
    none = await say(bot, "proxy status --server eu-1", ADMIN)
    assert [r.text for r in none] == [
        "no proxy runs on server eu-1 yet: an admin sets it up with `proxy setup --server eu-1`"
    ]
    created = result(await say(bot, "proxy setup --server eu-1", ADMIN))
    assert (created.ok, created.title) == (True, "proxy shipbot-edge runs (created)")
    assert created.fields["server"] == "eu-1"
    assert created.details == ("it runs on server eu-1: its routes answer at 127.0.0.1",)
    assert eu.inspect_service("shipbot-edge") is not None
    assert local.inspect_service("shipbot-edge") is None
    assert probed == []  # edge.address is the control plane's own edge, not eu-1's
    status = table(await say(bot, "proxy status --server eu-1", ADMIN))
    assert status.rows[0][3:] == ("1/1 running", "?", "eu-1")
    here = await say(bot, "proxy status", ADMIN)
    assert [r.text for r in here] == ["no proxy runs yet: an admin sets it up with `proxy setup`"]

    unchanged = result(await say(bot, "proxy setup --server eu-1", ADMIN))
    assert unchanged.title == "proxy shipbot-edge runs (unchanged)"
    mine = result(await say(bot, "proxy setup", ADMIN))
    assert mine.title == "proxy shipbot-edge runs (created)" and mine.fields["server"] == "local"
    assert probed and set(probed) == {"127.0.0.1"}
    assert local.inspect_service("shipbot-edge") is not None
    bot.engine.store.flush_audit()
    audited = [(r["command"], r["result"]) for r in bot.engine.store.audit_log()]
    assert ("proxy setup --server eu-1", "ok") in audited and ("proxy setup", "ok") in audited


async def test_an_unknown_or_unreachable_server_is_named(fleet):
    bot, local, eu, _ = fleet
    unknown = failure(await say(bot, "proxy setup --server nowhere", ADMIN))
    assert unknown.message == (
        "no server named 'nowhere' (known: eu-1, local); `server list` shows the ones added "
        "from chat; nothing was changed"
    )
    assert failure(await say(bot, "certs --server nowhere", ADMIN)).message == unknown.message
    empty = await say(bot, "certs --server eu-1", ADMIN)
    assert [r.text for r in empty] == [
        "no app has a domain on server eu-1 yet: add `domains: [...]` to app.yml and deploy"
    ]

    def refuse() -> FakeSwarm:
        raise EngineUnavailable("cannot reach the Docker engine of eu-1")

    bot.engine.plane.servers.forget("eu-1")  # the connection is lost; reconnecting fails
    bot.engine.plane.servers.connectors["eu-1"] = refuse
    away = failure(await say(bot, "proxy status --server eu-1", ADMIN))
    assert away.message == (
        "the proxy is on server eu-1, which cannot be reached: cannot reach the Docker engine "
        "of eu-1 (`server check eu-1`; other servers: local)"
    )
    assert local.inspect_service("shipbot-edge") is None


async def test_certs_reads_each_servers_own_proxy(fleet, tmp_path: Path):
    bot, local, eu, _ = fleet
    now = dt.datetime.now(dt.UTC)
    ca = make_ca("Pebble Intermediate CA 6fc6bf")
    default = make_leaf(ca, ["traefik.default"], cn="TRAEFIK DEFAULT CERT", serial=9)
    issued = make_leaf(
        ca, ["eu.example.com"], serial=0xE1, not_before=now, not_after=now + dt.timedelta(days=90)
    )
    fake_service(eu, "shipbot-edge", "traefik:v3", {"shipbot.edge": "true"})
    for swarm, domain in ((eu, "eu.example.com"), (local, "home.example.com")):
        rule = {"traefik.http.routers.shop-production.rule": f"Host(`{domain}`)"}
        labels = {"shipbot.app": "shop", "shipbot.env": "production", **rule}
        labels[LABEL_PLANE] = bot.engine.plane.id  # this control plane's service
        fake_service(swarm, "shop-production", "shop:1", labels)
    with tls_server({"*": default, "eu.example.com": issued}, tmp_path) as port:
        # eu-1 answers at 127.0.0.1; the control plane's own edge at an address nothing
        # listens on, so a row served there would not carry eu-1's certificate
        bot.engine.plane.edge = EdgeConfig(https_port=port, address="127.0.0.2")
        there = table(await say(bot, "certs --server eu-1", ADMIN))
        here = table(await say(bot, "certs", ADMIN))
    ((domain, app, env, issuer, until, _, note),) = there.rows
    assert (domain, app, env, issuer, note) == (
        "eu.example.com",
        "shop",
        "production",
        "Pebble Intermediate CA 6fc6bf",
        "",
    )
    assert until == (now + dt.timedelta(days=90)).strftime("%Y-%m-%d %H:%M UTC")
    # without --server every server's proxy is read, each row naming its server
    assert here.columns[-1] == "server"
    assert sorted((r[0], r[6], r[7]) for r in here.rows) == [
        ("eu.example.com", "", "eu-1"),
        (
            "home.example.com",
            "the edge did not answer (is the proxy running? `proxy status`)",
            "local",
        ),
    ]

    # eu-1 away: `certs` names it once and still shows what the control plane's proxy serves
    def refuse() -> FakeSwarm:
        raise EngineUnavailable("cannot reach the Docker engine of eu-1")

    bot.engine.plane.servers.forget("eu-1")
    bot.engine.plane.servers.connectors["eu-1"] = refuse
    replies = await say(bot, "certs", ADMIN)
    assert [r.text for r in replies if isinstance(r, Message)] == [
        "⚠️ certificates not read on server eu-1: cannot reach the Docker engine of eu-1"
    ]
    assert [(r[0], r[7]) for r in table(replies).rows] == [("home.example.com", "local")]
