"""The control plane apart, on in-memory swarms: no ``local`` server (shipbot.yml
``local: false``) or a local engine that does not answer, with servers added over SSH doing
the work. What names no server says which to name; status, drift and the read-back of
unknown releases go on with the servers that answer, and name the one away."""

from __future__ import annotations

import pytest

from commands.dispatch import Dispatcher
from commands.replies import Failure, Message, Result, Table
from core.config import ControlConfig
from core.deploy.drift import MISSING, UNREACHABLE, Drift
from core.engine import Engine
from core.errors import DeployError
from core.secrets import Vault
from core.servers.where import servers_in_use
from core.store import Store
from core.swarm.servers import Servers
from core.swarm.testing import FakeSwarm
from core.watch.drift import Post, step
from tests.chat import say
from tests.clock import SwarmSteps
from tests.test_servers import ADMIN

SHOP = """\
name: shop
image: shop:1
environments:
  production: {server: eu-1, replicas: 1}
  staging: {replicas: 1}
"""


def plane_with(tmp_path, servers: dict[str, FakeSwarm]) -> Dispatcher:
    """A dispatcher whose servers are exactly ``servers`` (``local`` only when named)."""
    home = tmp_path / "home"
    home.mkdir()
    folder = tmp_path / "shop"
    folder.mkdir()
    (folder / "app.yml").write_text(SHOP)
    engine = Engine(
        Store(home / "shipbot.db"),
        servers=Servers({name: (lambda s=swarm: s) for name, swarm in servers.items()}),
        home=home,
        vault=Vault.open(home),
        server_apps={"eu-1": ["shop"]},
        clock=SwarmSteps(*servers.values()),
    )
    return Dispatcher(engine, ControlConfig(admins=[ADMIN]))


def eu_swarm() -> FakeSwarm:
    swarm = FakeSwarm()
    swarm.publish("shop:1")
    return swarm


async def test_a_plane_without_local_says_which_servers_to_name():
    servers = Servers({"eu-1": FakeSwarm})
    servers.added = lambda: ["eu-1", "eu-2"]
    with pytest.raises(DeployError) as refused:
        await servers.client("local")
    assert str(refused.value) == (
        "this control plane has no engine of its own (shipbot.yml `local: false`): name the "
        "server to act on (known: eu-1, eu-2; `server add` adds one)"
    )
    with pytest.raises(DeployError) as unknown:
        await servers.client("us-1")
    assert str(unknown.value) == (
        "no server named 'us-1' (known: eu-1, eu-2; `server list` shows them)"
    )
    assert not servers.has_local and Servers({"local": FakeSwarm}).has_local


async def test_apart_the_ssh_server_is_driven_and_what_names_none_is_told_which(tmp_path):
    eu = eu_swarm()
    bot = plane_with(tmp_path, {"eu-1": eu})
    plane = bot.engine.plane
    try:
        assert await servers_in_use(plane) == []
        assert await say(bot, "status", ADMIN) == [Message("nothing is deployed yet")]
        assert (await say(bot, f"apps add shop --path {tmp_path / 'shop'}", ADMIN))[-1].ok
        shipped = await say(bot, "deploy shop --env production", ADMIN)
        assert isinstance(shipped[-1], Result) and shipped[-1].ok, shipped
        assert [s["Spec"]["Name"] for s in eu.services()] == ["shop-production"]
        assert await servers_in_use(plane) == ["eu-1"]
        # staging names no server, and there is no local one: it is told which to name
        refused = await say(bot, "deploy shop --env staging", ADMIN)
        assert isinstance(refused[-1], Failure), refused
        assert "no engine of its own" in refused[-1].message
        assert "known: eu-1" in refused[-1].message
        shown = [r for r in await say(bot, "status shop", ADMIN) if isinstance(r, Table)]
        assert [row[:3] for row in shown[0].rows] == [("shop", "production", "1")]
        assert await bot.engine.drift() == []
        assert await say(bot, "status --drift", ADMIN) == [
            Message("no drift: the swarm runs what shipbot deployed")
        ]
    finally:
        bot.engine.close()


async def test_a_local_engine_away_hides_no_other_server(tmp_path):
    local, eu = FakeSwarm(), eu_swarm()
    bot = plane_with(tmp_path, {"local": local, "eu-1": eu})
    try:
        assert (await say(bot, f"apps add shop --path {tmp_path / 'shop'}", ADMIN))[-1].ok
        shipped = await say(bot, "deploy shop --env production", ADMIN)
        assert isinstance(shipped[-1], Result) and shipped[-1].ok, shipped
        local.down = True  # the engine beside shipbot stopped answering
        replies = await say(bot, "status", ADMIN)
        (table,) = [r for r in replies if isinstance(r, Table)]
        assert [row[:2] for row in table.rows] == [("shop", "production")]
        away = [r.text for r in replies if isinstance(r, Message)]
        assert len(away) == 1 and away[0].startswith("⚠️ server local unreachable: ")
        eu.remove_service("shop-production")
        found = await bot.engine.drift()
        assert [(d.server, d.app, d.kind) for d in found] == [
            ("local", "", UNREACHABLE),
            ("eu-1", "shop", MISSING),
        ]
        drift = await say(bot, "status --drift", ADMIN)
        assert drift[0] == Message(f"⚠️ drift not checked on {found[0].detail}")
        assert isinstance(drift[1], Table) and drift[1].rows[0][:4] == (
            "shop",
            "production",
            "eu-1",
            MISSING,
        )
    finally:
        bot.engine.close()


def test_drift_watch_names_a_server_away_once_and_keeps_its_findings():
    missing = Drift("eu-2", "api", "production", MISSING, "api-production is gone")
    image = Drift("eu-1", "web", "production", "image differs", "web:2 runs, web:1 recorded")
    away = Drift("eu-2", "", "", UNREACHABLE, "eu-2 unreachable: SSH timed out")
    open_ = {missing.key: missing}
    # eu-2 stops answering while eu-1 drifts: eu-1 posted, eu-2 named, its finding kept
    posts, still = step([away, image], open_)
    assert posts == [
        Post(None, None, f"⚠️ drift not checked on {away.detail}; the other servers still are"),
        Post(
            "web",
            "production",
            "⚠️ drift on eu-1: web (production) image differs: web:2 runs, web:1 recorded. "
            "`status --drift` lists every difference",
        ),
    ]
    assert still == sorted([away, image, missing], key=lambda d: d.key)
    kept = {d.key: d for d in still}
    # the next round, still away: nothing new is said
    assert step([away, image], kept) == ([], still)
    # back, and its service is there again: its finding closes and so does the outage
    posts, left = step([image], kept)
    assert [p.text for p in posts] == [
        "✅ eu-2 answers again: its drift is checked again",
        "✅ api (production) on eu-2 matches the store again (service missing no more)",
    ]
    assert left == [image]


def test_shipbot_yml_local_false_opens_a_plane_without_a_local_server(tmp_path):
    engine = Engine.open(tmp_path, ControlConfig(local=False))
    try:
        assert engine.plane.servers.names == [] and not engine.plane.servers.has_local
    finally:
        engine.close()
    engine = Engine.open(tmp_path, ControlConfig())
    try:
        assert engine.plane.servers.has_local  # connected on first use, not now
    finally:
        engine.close()


async def test_a_server_away_keeps_its_rows_in_status_as_unknown(tmp_path):
    """What runs on a server that does not answer is not left out of ``status``: its live
    releases are listed, their tasks "unknown (server eu-1 unreachable)"."""
    local, eu = FakeSwarm(), eu_swarm()
    local.publish("shop:1")
    bot = plane_with(tmp_path, {"local": local, "eu-1": eu})
    try:
        assert (await say(bot, f"apps add shop --path {tmp_path / 'shop'}", ADMIN))[-1].ok
        for env in ("production", "staging"):
            shipped = await say(bot, f"deploy shop --env {env}", ADMIN)
            assert isinstance(shipped[-1], Result) and shipped[-1].ok, shipped
        eu.down = True
        replies = await say(bot, "status", ADMIN)
        (table,) = [r for r in replies if isinstance(r, Table)]
        assert [row[:4] for row in table.rows] == [
            ("shop", "production", "1", "unknown (server eu-1 unreachable)"),
            ("shop", "staging", "2", "1/1 running"),
        ]
        away = [r.text for r in replies if isinstance(r, Message)]
        assert len(away) == 1 and away[0].startswith("⚠️ server eu-1 unreachable: "), away
    finally:
        bot.engine.close()
