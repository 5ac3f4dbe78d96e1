"""Databases and volume backups on any server (issue 23): `db create --server` puts the
database on that server's swarm and everything after follows it (status, list, attach,
deploy, backup, verify, restore, remove; scheduled runs too); an app's volume is backed up
on the server its environment runs on. Two fake swarms, `local` and `eu-1`, through the
real dispatcher, with moto as S3; nothing of the database may appear on `local`."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from commands.catalog.reports import guarded_backup
from commands.dispatch import Dispatcher
from commands.replies import Message
from core.config import BackupsConfig, ControlConfig, NotifyRoute
from core.engine import Engine
from core.errors import EngineUnavailable
from core.secrets import Vault
from core.store import Store
from core.swarm.servers import Servers
from core.swarm.testing import FakeSwarm
from tests.chat import failure, result, say, steps, table
from tests.clock import SwarmSteps
from tests.fast_plane import fake_swarm
from tests.moto_s3 import KEYS, make_bucket, s3_config
from tests.test_backup_schedules import ADMIN, tools
from tests.test_backup_volumes import a_tar, shop_service, tar_tools
from tests.test_servers import row


@pytest.fixture
def fleet(tmp_path: Path, monkeypatch, s3_url):
    """A dispatcher driving `local` and `eu-1` (open to shop and blog), backups to moto."""
    for key, value in KEYS.items():
        monkeypatch.setenv(key, value)
    bucket = f"fleet-{uuid.uuid4().hex[:10]}"
    make_bucket(s3_url, bucket)
    local = fake_swarm("postgres:16", "shop:1", "blog:1")
    eu = fake_swarm("postgres:16", "shop:1", "blog:1")
    home = tmp_path / "home"
    home.mkdir()
    for app, server in (("shop", "eu-1"), ("blog", "local")):
        (tmp_path / app).mkdir()
        (tmp_path / app / "app.yml").write_text(
            f"name: {app}\nimage: {app}:1\ndatabases: [eudb]\n"
            f"environments:\n  production: {{server: {server}}}\n"
        )
    config = ControlConfig(
        admins=[ADMIN],
        notify=[NotifyRoute(platform="console", channel="ops", kinds=["backups"])],
        backups=BackupsConfig(s3=s3_config(s3_url, bucket), min_bytes=100),
    )
    connectors = {"local": lambda: local, "eu-1": lambda: eu}
    engine = Engine(
        Store(home / "shipbot.db"),
        servers=Servers(connectors),
        home=home,
        vault=Vault.open(home),
        server_apps={"eu-1": ["shop", "blog"]},
        clock=SwarmSteps(local, eu),
    )
    bot = Dispatcher(engine, config)
    yield bot, local, eu, tmp_path
    bot.close()


def engine_like(swarm: FakeSwarm) -> None:
    """Each running container shows its service's environment, as an engine does (what a
    backup or a restore reads a database's credentials from)."""
    inspect = swarm.inspect_container

    def read(container_id: str):
        info = inspect(container_id)
        if info is None or info["State"].get("Status") != "running":
            return info
        for service in list(swarm._services.values()):  # databases too, not only apps
            spec = service.spec
            for task in swarm.tasks(spec["Name"]):
                if task["Status"].get("ContainerStatus", {}).get("ContainerID") == container_id:
                    info["Config"]["Env"] = list(spec["TaskTemplate"]["ContainerSpec"]["Env"])
                    info["State"]["Running"] = True
        return info

    swarm.inspect_container = read


def unreachable(bot: Dispatcher, server: str) -> None:
    """``server`` stops answering: its client is dropped and reconnecting fails."""
    servers = bot.engine.plane.servers

    def refuse():
        raise EngineUnavailable(f"cannot reach the Docker engine of {server}")

    servers.forget(server)
    servers.connectors[server] = refuse


async def test_a_database_on_eu_1_lives_and_is_served_there(fleet):
    bot, local, eu, folder = fleet
    replies = await say(bot, "db create postgres eudb --server eu-1", ADMIN)
    made = result(replies)
    assert made.ok and made.title == "postgres database eudb is up", made
    assert made.fields["server"] == "eu-1"
    assert "creating service db-eudb (postgres:16) on volume db-eudb-data on server eu-1" in steps(
        replies
    )
    assert eu.inspect_service("db-eudb") is not None
    assert local.inspect_service("db-eudb") is None and local.services() == []
    assert bot.engine.store.database("eudb")["server"] == "eu-1"
    assert (await bot.engine.database("eudb")).server == "eu-1"

    details = dict((await say(bot, "db status eudb", ADMIN))[0].rows)
    assert details["server"] == "eu-1"
    assert details["service"] == "db-eudb"
    listed = table(await say(bot, "db list", ADMIN))
    assert listed.columns == ("database", "kind", "image", "tasks", "apps", "server")
    assert listed.rows == (("eudb", "postgres", "postgres:16", "1/1 healthy", "none", "eu-1"),)

    # an app on eu-1 attaches and deploys; the database joins its network on eu-1
    for app in ("shop", "blog"):
        assert result(await say(bot, f"apps add {app} --path {folder / app}", ADMIN)).ok
    assert result(await say(bot, "db attach eudb shop", ADMIN)).ok
    deployed = await say(bot, "deploy shop", ADMIN)
    assert result(deployed).ok, deployed
    db = await bot.engine.database("eudb")
    env = eu.inspect_service("shop-production")["Spec"]["TaskTemplate"]["ContainerSpec"]["Env"]
    assert f"DATABASE_URL={db.url}" in env
    names = eu.network_names()
    networks = eu.inspect_service("db-eudb")["Spec"]["TaskTemplate"]["Networks"]
    assert "shipbot-shop-production" in {names.get(n["Target"], n["Target"]) for n in networks}
    assert "database eudb joined network shipbot-shop-production (it restarts)" in steps(deployed)
    assert local.services() == []

    # an app on local may not use it: refused with the reason, nothing runs
    assert result(await say(bot, "db attach eudb blog", ADMIN)).ok  # not deployed yet
    refused = failure(await say(bot, "deploy blog", ADMIN))
    assert refused.message.startswith(
        "blog (production) runs on server local, and database eudb lives on server eu-1: "
        "an overlay network does not span swarms"
    ), refused.message
    assert local.services() == []


async def test_backup_verify_restore_and_remove_follow_the_database(fleet):
    bot, local, eu, _ = fleet
    assert result(await say(bot, "db create postgres eudb --server eu-1", ADMIN)).ok
    engine_like(eu)
    tools(eu)
    done = result(await say(bot, "backup run eudb", ADMIN))
    assert done.ok and done.title == "backup 1 of eudb is stored", done
    # a scheduled run takes the same path
    scheduled = await guarded_backup(bot.engine.plane, bot.config, bot.notifier, "eudb", ADMIN)
    assert scheduled.ok and scheduled.title == "backup 2 of eudb is stored"
    assert [r[1] for r in table(await say(bot, "backup list eudb", ADMIN)).rows] == ["ok", "ok"]

    made = []
    create = eu.create_service
    eu.create_service = lambda spec: (made.append(spec["Name"]), create(spec))[1]
    verified = result(await say(bot, "backup verify eudb", ADMIN))
    assert verified.ok, verified
    assert verified.details[0] == "backup 2 restored: 2 tables, 5 rows"
    assert made == ["db-verify-eudb-2"] and eu.inspect_service("db-verify-eudb-2") is None

    restored = await say(bot, "restore eudb 1 --to eucopy", ADMIN)
    assert result(restored).title == "backup 1 of eudb restored into eucopy", restored
    assert made[-1] == "db-eucopy"
    assert bot.engine.store.database("eucopy")["server"] == "eu-1"
    assert local.services() == [] and local.inspect_volume("db-eucopy-data") is None

    # eu-1 holds databases: it is not forgotten while they live there
    bot.engine.store.add_server(row("eu-1"))
    kept = failure(await say(bot, "server remove eu-1", ADMIN))
    assert kept.message == (
        "databases eucopy, eudb live on eu-1: back them up and remove them (`backup run "
        "eucopy`, then `db remove eucopy`) first; nothing was changed"
    )
    assert bot.engine.store.server("eu-1") is not None

    removed = result(await say(bot, 'db remove eucopy --delete-data --break-glass "test"', ADMIN))
    assert removed.title == "database eucopy removed with its data (volume db-eucopy-data)"
    assert eu.inspect_service("db-eucopy") is None and eu.inspect_volume("db-eucopy-data") is None
    assert eu.inspect_service("db-eudb") is not None


async def test_an_unknown_or_unreachable_server_is_named(fleet):
    bot, local, eu, _ = fleet
    unknown = failure(await say(bot, "db create postgres x --server nowhere", ADMIN))
    assert unknown.message == (
        "no server named 'nowhere' (known: eu-1, local); `server list` shows the ones added "
        "from chat; nothing was changed"
    )
    assert bot.engine.store.databases() == []
    assert result(await say(bot, "db create postgres eudb --server eu-1", ADMIN)).ok
    assert result(await say(bot, "db create postgres homedb", ADMIN)).ok
    assert bot.engine.store.database("homedb")["server"] == "local"
    assert local.inspect_service("db-homedb") is not None

    unreachable(bot, "eu-1")
    said = await say(bot, "db list", ADMIN)
    assert [(r[0], r[3], r[5]) for r in table(said).rows] == [
        ("eudb", "unknown (server unreachable)", "eu-1"),
        ("homedb", "1/1 healthy", "local"),
    ]
    assert [r.text for r in said if isinstance(r, Message)] == [
        "⚠️ server eu-1 unreachable: cannot reach the Docker engine of eu-1"
    ]
    report = await say(bot, "backup report", ADMIN)
    assert [r[0] for r in table(report).rows] == ["eudb", "homedb"]
    assert [r.text for r in report if isinstance(r, Message)] == [
        "⚠️ server eu-1 unreachable: cannot reach the Docker engine of eu-1; backups of eudb "
        "cannot run until it answers"
    ]
    status = failure(await say(bot, "db status eudb", ADMIN))
    assert status.message == (
        "database eudb is on server eu-1, which cannot be reached: cannot reach the Docker "
        "engine of eu-1 (`server check eu-1`; other servers: local)"
    )
    backup = result(await say(bot, "backup run eudb", ADMIN))
    assert not backup.ok and "database eudb is on server eu-1" in repr(backup)

    # the control plane's own server away: a new database says which server to name
    unreachable(bot, "local")
    away = failure(await say(bot, "db create postgres other", ADMIN))
    assert away.message == (
        "database other would be on the control plane's own server local, which cannot be "
        "reached: cannot reach the Docker engine of local. Name a server with --server S "
        "(servers: eu-1); nothing was changed"
    )
    assert bot.engine.store.database("other") is None


async def test_a_volume_is_backed_up_and_restored_where_its_app_runs(fleet):
    bot, local, eu, _ = fleet
    eu.add_image("busybox:latest")
    helpers = shop_service(eu)
    await bot.engine.db.in_thread(
        lambda: bot.engine.store.set_env_server("shop", "production", "eu-1", 0.0)
    )
    archive, received = a_tar(), []
    tar_tools(eu, archive, received)
    done = result(await say(bot, "volume backup shop data", ADMIN))
    assert done.ok, done
    (row,) = bot.engine.store.good_backups("shop/production/data")
    (mount,) = helpers[0]["TaskTemplate"]["ContainerSpec"]["Mounts"]
    assert (mount["Source"], mount["ReadOnly"]) == ("shop-production-data", True)
    command = f"volume restore shop data {row['id']} --to data-copy"
    restored = result(await say(bot, command, ADMIN))
    assert restored.ok, restored
    assert [bytes(b) for b in received] == [archive]
    assert eu.inspect_volume("shop-production-data-copy") is not None
    assert local.services() == [] and local.inspect_volume("shop-production-data-copy") is None
