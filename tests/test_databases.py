"""Managed databases without an engine: the pure builders exactly, then the chat commands
through the real dispatcher, store and vault on the fake swarm."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from commands.replies import DENIED, USAGE
from core.config import ConfigError, ControlConfig, DataConfig, load_config
from core.data import databases, db_spec
from core.data.db_spec import Credentials, Database
from core.swarm import VolumeInUse
from core.swarm.testing.orchestrator import STUCK
from tests.chat import failure, result, say, steps, table
from tests.fast_plane import dispatcher, fake_swarm

ADMIN = "console:root"
VIEWER = "console:vera"
S = 1_000_000_000


def database(kind: str, creds: Credentials, image: str = "img:1") -> Database:
    return Database("maindb", kind, "1", image, creds, ADMIN, 0.0)


PG = Credentials("maindb", "pw0123456789", "maindb")
MARIA = Credentials("maindb", "pw0123456789", "maindb", "root0123456789")
REDIS = Credentials("default", "pw0123456789", "0")


def test_postgres_service_spec_exactly():
    labels = {"shipbot.db": "maindb", "shipbot.db.kind": "postgres", "shipbot.managed": "true"}
    update = {
        "Parallelism": 1,
        "Delay": 0,
        "FailureAction": "pause",
        "Monitor": 10 * S,
        "MaxFailureRatio": 0,
        "Order": "stop-first",
    }
    assert db_spec.service_spec(database("postgres", PG, "postgres:16")) == {
        "Name": "db-maindb",
        "Labels": labels,
        "TaskTemplate": {
            "ContainerSpec": {
                "Image": "postgres:16",
                "Labels": labels,
                "Env": [
                    "POSTGRES_DB=maindb",
                    "POSTGRES_PASSWORD=pw0123456789",
                    "POSTGRES_USER=maindb",
                ],
                "Healthcheck": {
                    "Test": [
                        "CMD",
                        "pg_isready",
                        "-h",
                        "127.0.0.1",
                        "-U",
                        "maindb",
                        "-d",
                        "maindb",
                    ],
                    "Interval": 2 * S,
                    "Timeout": 5 * S,
                    "Retries": 5,
                    "StartPeriod": 60 * S,
                },
                "Mounts": [
                    {
                        "Type": "volume",
                        "Source": "db-maindb-data",
                        "Target": "/var/lib/postgresql/data",
                        "ReadOnly": False,
                        "VolumeOptions": {
                            "Labels": {"shipbot.db": "maindb", "shipbot.managed": "true"}
                        },
                    }
                ],
                "StopGracePeriod": 30 * S,
            },
            "RestartPolicy": {"Condition": "any", "Delay": 2 * S, "MaxAttempts": 0},
            "Networks": [],
            "ForceUpdate": 0,
        },
        "Mode": {"Replicated": {"Replicas": 1}},
        "UpdateConfig": update,
        "RollbackConfig": update,
        "EndpointSpec": {"Mode": "dnsrr"},
    }


def test_mariadb_and_mysql_follow_their_official_images():
    for kind, admin in (("mariadb", "mariadb-admin"), ("mysql", "mysqladmin")):
        container = db_spec.service_spec(database(kind, MARIA))["TaskTemplate"]["ContainerSpec"]
        prefix = kind.upper()
        assert container["Env"] == [
            f"{prefix}_DATABASE=maindb",
            f"{prefix}_PASSWORD=pw0123456789",
            f"{prefix}_ROOT_PASSWORD=root0123456789",
            f"{prefix}_USER=maindb",
        ]
        assert container["Healthcheck"]["Test"] == [
            "CMD",
            admin,
            "ping",
            "-h",
            "127.0.0.1",
            "--silent",
        ]
        assert container["Mounts"][0]["Target"] == "/var/lib/mysql"
        assert "Args" not in container


def test_redis_runs_with_a_password_its_health_check_knows():
    container = db_spec.service_spec(database("redis", REDIS))["TaskTemplate"]["ContainerSpec"]
    assert container["Args"] == ["redis-server", "--requirepass", "pw0123456789"]
    assert container["Env"] == ["REDISCLI_AUTH=pw0123456789"]
    assert container["Healthcheck"]["Test"] == ["CMD-SHELL", "redis-cli ping | grep -qx PONG"]
    assert container["Mounts"][0]["Target"] == "/data"


def test_urls_and_their_variables():
    assert database("postgres", PG).url == "postgres://maindb:pw0123456789@db-maindb:5432/maindb"
    assert database("mariadb", MARIA).url == "mysql://maindb:pw0123456789@db-maindb:3306/maindb"
    assert database("mysql", MARIA).url == "mysql://maindb:pw0123456789@db-maindb:3306/maindb"
    assert database("redis", REDIS).url == "redis://default:pw0123456789@db-maindb:6379/0"
    assert [database(k, MARIA).variable for k in ("postgres", "mariadb", "redis")] == [
        "DATABASE_URL",
        "DATABASE_URL",
        "REDIS_URL",
    ]


def test_new_credentials_are_fresh_and_url_safe():
    first, second = (
        db_spec.new_credentials("mariadb", "main-db"),
        db_spec.new_credentials("mariadb", "main-db"),
    )
    assert (first.user, first.database) == ("main_db", "main_db")
    assert first.password != second.password and first.root_password != second.root_password
    assert len(first.password) == 32 and first.password.isalnum()
    assert db_spec.new_credentials("postgres", "x").root_password is None
    redis = db_spec.new_credentials("redis", "x")
    assert (redis.user, redis.database, redis.root_password) == ("default", "0", None)


def test_images_are_configuration(tmp_path: Path):
    assert db_spec.image_for(DataConfig(), "postgres", "16") == "postgres:16"
    (tmp_path / "shipbot.yml").write_text(
        'data: {images: {postgres: "shipbot-test/postgres:{version}"}}\n'
    )
    config = load_config(tmp_path).data
    assert db_spec.image_for(config, "postgres", "15") == "shipbot-test/postgres:15"
    assert db_spec.image_for(config, "redis", "7") == "redis:7"  # the others keep defaults
    (tmp_path / "shipbot.yml").write_text("data: {images: {oracle: x}}\n")
    with pytest.raises(ConfigError, match="data.images: .*'oracle' is not one of"):
        load_config(tmp_path)


# the chat commands on the fake swarm

APP_YML = """\
name: shop
image: shop:1
databases: [maindb]
"""


@pytest.fixture
def plane(tmp_path: Path):
    home = tmp_path / "home"
    home.mkdir()
    for app in ("shop", "blog"):
        (tmp_path / app).mkdir()
        (tmp_path / app / "app.yml").write_text(APP_YML.replace("shop", app))
    swarm = fake_swarm("shop:1", "blog:1", "postgres:16", "redis:7")
    bot = dispatcher(home, swarm, [ADMIN])
    yield bot, swarm, tmp_path
    bot.close()


async def test_create_records_encrypted_credentials_and_runs_one_replica(plane):
    bot, swarm, _ = plane
    replies = await say(bot, "db create postgres maindb", ADMIN)
    done = result(replies)
    assert done.ok and done.title == "postgres database maindb is up"
    assert (
        "creating service db-maindb (postgres:16) on volume db-maindb-data on server local"
        in steps(replies)
    )
    service = swarm.inspect_service("db-maindb")
    assert service is not None and service["Spec"]["Mode"] == {"Replicated": {"Replicas": 1}}
    assert swarm.inspect_volume("db-maindb-data") is not None
    row = bot.engine.store.database("maindb")
    assert row is not None and row["kind"] == "postgres" and row["created_by"] == ADMIN
    db = await bot.engine.database("maindb")
    assert db.credentials.password not in row["credentials"]  # sealed by the vault
    assert (
        f"POSTGRES_PASSWORD={db.credentials.password}"
        in (service["Spec"]["TaskTemplate"]["ContainerSpec"]["Env"])
    )
    assert db.credentials.password not in json.dumps([str(r) for r in replies])
    again = failure(await say(bot, "db create postgres maindb", ADMIN))
    assert again.message == "database maindb exists already: `db status maindb`"


async def test_a_database_that_never_gets_healthy_fails_and_says_so(plane, monkeypatch):
    bot, swarm, _ = plane
    swarm.add_image("postgres:15", STUCK)
    monkeypatch.setattr(databases, "READY_SECONDS", 30)
    done = result(await say(bot, "db create postgres slow --version 15", ADMIN))
    assert not done.ok and done.title.startswith("postgres database slow did not become healthy")


async def test_usage_errors_name_the_problem(plane):
    bot, _, _ = plane
    bad = failure(await say(bot, "db create oracle maindb", ADMIN))
    assert bad.kind == USAGE and "'oracle' is not a database kind" in bad.message
    bad = failure(await say(bot, "db remove maindb --confirm maindb", ADMIN))
    assert bad.kind == USAGE and "unknown option --confirm" in bad.message


async def test_only_admins_of_everything_manage_databases(plane):
    bot, _, _ = plane
    assert result(await say(bot, "grant console:ann admin --app shop", ADMIN)).ok
    denied = failure(await say(bot, "db create postgres maindb", "console:ann"))
    assert denied.kind == DENIED
    assert result(await say(bot, "db create postgres maindb", ADMIN)).ok
    denied = failure(await say(bot, "db attach maindb shop", "console:ann"))
    assert denied.kind == DENIED  # an admin of shop alone cannot hand shop a database


async def test_an_app_gets_only_the_databases_attached_to_it(plane):
    bot, swarm, folder = plane
    assert result(await say(bot, "db create postgres maindb", ADMIN)).ok
    for app in ("shop", "blog"):
        assert result(await say(bot, f"apps add {app} --path {folder / app}", ADMIN)).ok
    assert result(await say(bot, "db attach maindb shop", ADMIN)).ok
    db = await bot.engine.database("maindb")
    planned = str(await say(bot, "deploy shop --dry-run", ADMIN))
    assert "env +DATABASE_URL=••••••" in planned and db.credentials.password not in planned
    deployed = result(await say(bot, "deploy shop", ADMIN))
    assert deployed.ok
    env = swarm.inspect_service("shop-production")["Spec"]["TaskTemplate"]["ContainerSpec"]["Env"]
    assert f"DATABASE_URL={db.url}" in env
    (release,) = bot.engine.store.releases("shop", "production")
    assert db.credentials.password not in json.dumps(release.spec)  # sealed with the release
    # blog names the same database in its app.yml: the cross-app hole stays shut
    refused = failure(await say(bot, "deploy blog", ADMIN))
    assert refused.message == (
        "blog's app.yml names database 'maindb' in production, which is not attached to blog "
        "(production): an admin runs `db attach maindb blog --env production`; nothing was "
        "changed"
    )
    assert swarm.inspect_service("blog-production") is None
    assert result(await say(bot, "db detach maindb shop", ADMIN)).ok
    detached = failure(await say(bot, "deploy shop", ADMIN))
    assert "not attached to shop (production)" in detached.message


async def test_two_databases_for_one_variable_are_refused(plane):
    bot, _, folder = plane
    for name in ("one", "two"):
        assert result(await say(bot, f"db create postgres {name}", ADMIN)).ok
        (folder / "shop" / "app.yml").write_text(APP_YML.replace("[maindb]", "[one, two]"))
    assert result(await say(bot, f"apps add shop --path {folder / 'shop'}", ADMIN)).ok
    for name in ("one", "two"):
        assert result(await say(bot, f"db attach {name} shop", ADMIN)).ok
    refused = failure(await say(bot, "deploy shop", ADMIN))
    assert (
        refused.message
        == "shop: databases one and two would both set DATABASE_URL; name one of them"
    )


async def test_viewers_see_the_databases_of_apps_they_view(plane):
    bot, _, folder = plane
    for kind, name in (("postgres", "maindb"), ("redis", "cache")):
        assert result(await say(bot, f"db create {kind} {name}", ADMIN)).ok
    assert result(await say(bot, f"apps add shop --path {folder / 'shop'}", ADMIN)).ok
    assert result(await say(bot, "db attach maindb shop", ADMIN)).ok
    assert result(await say(bot, f"grant {VIEWER} viewer --app shop", ADMIN)).ok
    everything = table(await say(bot, "db list", ADMIN))
    assert [r[:2] for r in everything.rows] == [("cache", "redis"), ("maindb", "postgres")]
    assert everything.rows[1][3:] == ("1/1 healthy", "shop (production)", "local")
    mine = table(await say(bot, "db list", VIEWER))
    assert [r[0] for r in mine.rows] == ["maindb"]
    hidden = failure(await say(bot, "db status cache", VIEWER))
    absent = failure(await say(bot, "db status nosuch", VIEWER))
    assert hidden.message == "no database 'cache': `db list` shows the ones you may see"
    assert absent.message == "no database 'nosuch': `db list` shows the ones you may see"
    shown = await say(bot, "db status maindb", VIEWER)
    details = dict(shown[0].rows)
    assert details["volume"] == "db-maindb-data (present)"
    assert details["apps"] == "shop (production)"
    assert details["variable"] == "DATABASE_URL"
    assert shown[1].rows[0][1:3] == ("running", "running")


async def test_remove_keeps_the_volume_unless_asked_and_waits_for_detach(plane):
    bot, swarm, folder = plane
    assert result(await say(bot, "db create postgres maindb", ADMIN)).ok
    assert result(await say(bot, "db create redis cache", ADMIN)).ok
    assert result(await say(bot, f"apps add shop --path {folder / 'shop'}", ADMIN)).ok
    assert result(await say(bot, "db attach maindb shop", ADMIN)).ok
    refused = failure(await say(bot, 'db remove maindb --break-glass "test"', ADMIN))
    assert refused.message == (
        "database maindb is attached to shop (production): detach it first "
        "(`db detach maindb shop --env production`); nothing was changed"
    )
    asking = failure(await say(bot, "db remove maindb", ADMIN))
    assert asking.message == (
        "maindb is attached to shop (production): `db detach maindb APP --env ENV` first"
    )
    assert swarm.inspect_service("db-maindb") is not None
    assert result(await say(bot, "db detach maindb shop", ADMIN)).ok
    kept = result(await say(bot, 'db remove maindb --break-glass "test"', ADMIN))
    assert kept.title == "database maindb removed; its data stays on volume db-maindb-data"
    assert (
        swarm.inspect_service("db-maindb") is None and bot.engine.store.database("maindb") is None
    )
    assert swarm.inspect_volume("db-maindb-data") is not None
    # a new database of that name would find the old files with credentials nobody has
    reused = failure(await say(bot, "db create postgres maindb", ADMIN))
    assert reused.message.startswith("the volume db-maindb-data holds data kept from")
    gone = result(await say(bot, 'db remove cache --delete-data --break-glass "test"', ADMIN))
    assert gone.title == "database cache removed with its data (volume db-cache-data)"
    assert swarm.inspect_volume("db-cache-data") is None
    audit = [row["command"] for row in bot.engine.store.db["audit"].rows]
    assert 'db remove cache --delete-data --break-glass "test"' in audit


def test_the_fake_refuses_to_remove_a_volume_in_use(tmp_path: Path):
    swarm = fake_swarm("redis:7")
    db = Database("c", "redis", "7", "redis:7", REDIS, ADMIN, 0.0)
    swarm.create_service(db_spec.service_spec(db))
    with pytest.raises(VolumeInUse):
        swarm.remove_volume("db-c-data")
    swarm.remove_service("db-c")
    swarm.remove_volume("db-c-data")
    assert swarm.inspect_volume("db-c-data") is None


def test_the_data_section_is_one_field_of_shipbot_yml():
    assert ControlConfig().data.images == {
        "postgres": "postgres:{version}",
        "mariadb": "mariadb:{version}",
        "mysql": "mysql:{version}",
        "redis": "redis:{version}",
    }


async def test_an_app_cannot_make_a_database_s_service_or_volume(plane):
    bot, swarm, folder = plane
    assert result(await say(bot, "db create postgres maindb", ADMIN)).ok
    (folder / "db").mkdir()
    (folder / "db" / "app.yml").write_text(
        "name: db\nimage: shop:1\nvolumes: ['data:/x']\nenvironments: {maindb: {}}\n"
    )
    assert result(await say(bot, f"apps add db --path {folder / 'db'}", ADMIN)).ok
    refused = failure(await say(bot, "deploy db --env maindb", ADMIN))
    assert refused.message == (
        "db in environment 'maindb' would make 'db-maindb', which belongs to a managed "
        "database; pick another environment or volume name, nothing was changed"
    )
    assert swarm.inspect_service("db-maindb")["Spec"]["Labels"]["shipbot.db"] == "maindb"


async def test_env_list_shows_the_variables_attached_databases_set_masked(plane):
    bot, _, folder = plane
    assert result(await say(bot, f"apps add shop --path {folder / 'shop'}", ADMIN)).ok
    assert result(await say(bot, "db create postgres maindb", ADMIN)).ok
    unattached = table(await say(bot, "env list shop", ADMIN))
    assert unattached.rows == (
        (
            "DATABASE_URL",
            "••••••",
            "database maindb; not attached to shop (production): deploys refuse it",
        ),
    )
    assert result(await say(bot, "db attach maindb shop", ADMIN)).ok
    listed = table(await say(bot, "env list shop", ADMIN))
    assert listed.rows == (("DATABASE_URL", "••••••", "database maindb"),)
    db = await bot.engine.database("maindb")
    assert db.credentials.password not in str(listed)
