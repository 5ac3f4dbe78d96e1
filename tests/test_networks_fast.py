"""Network isolation on the fake swarm, through the dispatcher: which networks each app
environment, the edge and the databases are on, and who may link two apps."""

from __future__ import annotations

from pathlib import Path

import pytest

from commands.replies import DENIED
from tests.chat import failure, result, say, steps, table
from tests.fast_plane import dispatcher, fake_swarm

ADMIN = "console:alice"
APP_YML = """\
name: {name}
image: {name}:1
port: 8080
{extra}
"""


def networks_of(swarm, service: str) -> list[str]:
    spec = swarm.inspect_service(service)["Spec"]
    return [n["Target"] for n in spec["TaskTemplate"]["Networks"]]


@pytest.fixture
def plane(tmp_path: Path):
    swarm = fake_swarm("traefik:v3", "web:1", "api:1", "pay:1", "redis:7")
    home = tmp_path / "home"
    home.mkdir()
    bot = dispatcher(home, swarm, [ADMIN])
    yield bot, swarm, tmp_path
    bot.close()


async def add(bot, root: Path, name: str, extra: str = "") -> Path:
    folder = root / name
    folder.mkdir(exist_ok=True)
    (folder / "app.yml").write_text(APP_YML.format(name=name, extra=extra))
    assert result(await say(bot, f"apps add {name} --path {folder}", ADMIN)).ok
    return folder


async def test_each_environment_gets_its_own_network_and_the_edge_joins_it_once(plane):
    bot, swarm, root = plane
    assert result(await say(bot, "proxy setup", ADMIN)).ok
    assert networks_of(swarm, "shipbot-edge") == ["shipbot"]
    await add(bot, root, "web", "domains: [web.test]\nenvironments: {staging: {domains: [s.test]}}")
    for grant in ("web web.test --env production", "web s.test --env staging"):
        assert result(await say(bot, f"domain grant {grant}", ADMIN)).ok
    await add(bot, root, "api")

    first = await say(bot, "deploy web", ADMIN)
    assert result(first).ok, first
    assert networks_of(swarm, "web-production") == ["shipbot-web-production"]
    assert swarm.networks["shipbot-web-production"] == {
        "shipbot.managed": "true",
        "shipbot.app": "web",
        "shipbot.env": "production",
        "shipbot.plane": bot.engine.plane.id,
    }
    labels = swarm.inspect_service("web-production")["Spec"]["Labels"]
    assert labels["traefik.swarm.network"] == "shipbot-web-production"
    assert (
        "the edge shipbot-edge joins network shipbot-web-production (Traefik restarts, "
        "stop-first)" in steps(first)
    )
    assert networks_of(swarm, "shipbot-edge") == ["shipbot", "shipbot-web-production"]

    # the set of routed networks did not change: the edge is left alone
    updates = swarm.calls.count("update_service")
    again = await say(bot, "deploy web", ADMIN)
    assert result(again).ok
    assert not [s for s in steps(again) if "the edge" in s]
    assert swarm.calls.count("update_service") == updates + 1  # web's own update only

    # an app without domains: its own network, and the edge does not join it
    assert result(await say(bot, "deploy api", ADMIN)).ok
    assert networks_of(swarm, "api-production") == ["shipbot-api-production"]
    assert result(await say(bot, "deploy web --env staging", ADMIN)).ok
    assert networks_of(swarm, "shipbot-edge") == [
        "shipbot",
        "shipbot-web-production",
        "shipbot-web-staging",
    ]
    # `proxy setup` computes the same networks: nothing to update
    assert result(await say(bot, "proxy setup", ADMIN)).title.endswith("(unchanged)")


async def test_a_link_is_an_admins_decision_on_both_apps(plane, monkeypatch):
    bot, swarm, root = plane
    await add(bot, root, "api")
    await add(bot, root, "pay")
    folder = await add(bot, root, "web")
    for app in ("api", "pay", "web"):
        assert result(await say(bot, f"deploy {app}", ADMIN)).ok
    assert result(await say(bot, "grant console:dev deployer --app web", ADMIN)).ok
    assert result(await say(bot, "grant console:wadmin admin --app web", ADMIN)).ok

    # a push asks for a link: refused, nothing changes
    (folder / "app.yml").write_text(APP_YML.format(name="web", extra="links: [api]"))
    before = swarm.inspect_service("web-production")["Version"]["Index"]
    refused = failure(await say(bot, "deploy web", "console:dev"))
    assert refused.message == (
        "web's app.yml links to api in production, which no admin granted: an admin runs "
        "`link grant web api --env production`; nothing was changed"
    )
    assert swarm.inspect_service("web-production")["Version"]["Index"] == before
    assert [r.number for r in bot.engine.store.releases("web")] == [1]

    # the deployer cannot grant it, nor can an admin of web alone
    denied = failure(await say(bot, "link grant web api", "console:dev"))
    assert denied.kind == DENIED
    alone = failure(await say(bot, "link grant web api", "console:wadmin"))
    assert alone.message.startswith("console:wadmin may not admin on api/production")
    assert bot.engine.store.links("web") == []

    granted = result(await say(bot, "link grant web api", ADMIN))
    assert (granted.ok, granted.title) == (True, "web may reach api in production")
    assert table(await say(bot, "link list web", ADMIN)).rows[0][:3] == (
        "production",
        "api",
        ADMIN,
    )
    assert result(await say(bot, "deploy web", "console:dev")).ok
    assert result(await say(bot, "deploy web", "console:dev")).ok  # release 3
    assert networks_of(swarm, "web-production") == [
        "shipbot-web-production",
        "shipbot-api-production",
    ]
    # pay is apart from both
    assert networks_of(swarm, "pay-production") == ["shipbot-pay-production"]

    # a job of web runs on the same networks as web
    created = []
    create = swarm.create_service
    monkeypatch.setattr(
        swarm, "create_service", lambda s, a=None: (created.append(s), create(s, a))
    )
    assert result(await say(bot, "run web -- true", ADMIN)).ok
    (job,) = [s for s in created if s["Name"].startswith("web-production_run-")]
    assert [n["Target"] for n in job["TaskTemplate"]["Networks"]] == [
        "shipbot-web-production",
        "shipbot-api-production",
    ]

    # revoked: web leaves api's network now, and a rollback does not bring it back
    revoked = await say(bot, "link revoke web api", ADMIN)
    assert result(revoked).ok
    assert "web-production left network shipbot-api-production (a rolling update)" in steps(revoked)
    assert networks_of(swarm, "web-production") == ["shipbot-web-production"]
    swarm.now += 10  # two updates never start at the same instant on a real engine
    assert result(await say(bot, "rollback web 2", ADMIN)).ok
    assert networks_of(swarm, "web-production") == ["shipbot-web-production"]
    audited = [(r["command"], r["result"]) for r in bot.engine.store.audit_log("web")]
    assert ("link grant web api", "ok") in audited
    assert ("link revoke web api", "ok") in audited


async def test_a_database_is_on_its_own_network_and_those_of_the_apps_it_serves(plane):
    bot, swarm, root = plane
    assert result(await say(bot, "db create redis cache", ADMIN)).ok
    assert networks_of(swarm, "db-cache") == ["shipbot-db-cache"]
    await add(bot, root, "web", "databases: [cache]")
    await add(bot, root, "api")
    assert result(await say(bot, "deploy api", ADMIN)).ok
    assert result(await say(bot, "db attach cache web", ADMIN)).ok
    assert networks_of(swarm, "db-cache") == ["shipbot-db-cache"]  # web has no network yet

    deployed = await say(bot, "deploy web", ADMIN)
    assert result(deployed).ok, deployed
    assert "database cache joined network shipbot-web-production (it restarts)" in steps(deployed)
    assert networks_of(swarm, "db-cache") == ["shipbot-db-cache", "shipbot-web-production"]
    assert networks_of(swarm, "api-production") == ["shipbot-api-production"]

    # detached: the database leaves web's network at once
    assert result(await say(bot, "db detach cache web", ADMIN)).ok
    assert networks_of(swarm, "db-cache") == ["shipbot-db-cache"]
    assert result(await say(bot, "db attach cache web", ADMIN)).ok
    assert networks_of(swarm, "db-cache") == ["shipbot-db-cache", "shipbot-web-production"]


async def test_an_upgraded_database_leaves_the_shared_network_once_its_apps_moved(plane):
    bot, swarm, root = plane
    assert result(await say(bot, "db create redis cache", ADMIN)).ok
    for app in ("web", "api"):
        await add(bot, root, app, "databases: [cache]")
        assert result(await say(bot, f"db attach cache {app}", ADMIN)).ok
        assert result(await say(bot, f"deploy {app}", ADMIN)).ok
    # as before this change: the database and both apps on shipbot's shared network
    swarm.ensure_network("shipbot")
    for service in ("db-cache", "web-production", "api-production"):
        spec = swarm.inspect_service(service)["Spec"]
        spec["TaskTemplate"]["Networks"] = [{"Target": "shipbot"}]
        swarm.update_service(spec)
    swarm.now += 10  # two updates never start at the same instant on a real engine

    assert result(await say(bot, "deploy web", ADMIN)).ok
    # api, not deployed since, still reaches it on the shared network
    assert networks_of(swarm, "db-cache") == [
        "shipbot",
        "shipbot-api-production",
        "shipbot-db-cache",
        "shipbot-web-production",
    ]
    swarm.now += 10
    assert result(await say(bot, "deploy api", ADMIN)).ok
    assert networks_of(swarm, "db-cache") == [
        "shipbot-api-production",
        "shipbot-db-cache",
        "shipbot-web-production",
    ]


async def test_another_control_planes_routed_service_never_moves_this_edge(plane):
    bot, swarm, root = plane
    assert result(await say(bot, "proxy setup", ADMIN)).ok
    # on a shared swarm: another control plane's routed app, on its own network
    swarm.ensure_network("shipbot-shop-production")
    swarm.create_service(
        {
            "Name": "shop-production",
            "Labels": {
                "shipbot.managed": "true",
                "shipbot.app": "shop",
                "shipbot.env": "production",
                "shipbot.plane": "another-plane",
                "traefik.enable": "true",
                "traefik.swarm.network": "shipbot-shop-production",
            },
            "TaskTemplate": {
                "ContainerSpec": {"Image": "web:1"},
                "Networks": [{"Target": "shipbot-shop-production"}],
            },
            "Mode": {"Replicated": {"Replicas": 1}},
        }
    )
    await add(bot, root, "web", "domains: [web.test]")
    assert result(await say(bot, "domain grant web web.test", ADMIN)).ok
    updates = swarm.calls.count("update_service")
    deployed = await say(bot, "deploy web", ADMIN)
    assert result(deployed).ok, deployed
    assert networks_of(swarm, "shipbot-edge") == ["shipbot", "shipbot-web-production"]
    assert swarm.calls.count("update_service") == updates + 1  # the edge's join only
    assert result(await say(bot, "proxy setup", ADMIN)).title.endswith("(unchanged)")
