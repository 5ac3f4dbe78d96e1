"""Managed databases on the real engine, from the images ./dev builds out of Debian packages:
postgres, mariadb and redis come up healthy, an app deployed with `databases:` gets working
URLs, and removal keeps the volume unless --delete-data."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import docker.errors
import pytest

from commands.dispatch import Dispatcher
from tests.chat import failure, remove_volumes, result, say, table

pytestmark = pytest.mark.docker

ADMIN = "console:alice"
SHIPBOT_YML = """\
admins: [console:alice]
data:
  images:
    postgres: "shipbot-test/postgres:{version}"
    mariadb: "shipbot-test/mariadb:{version}"
    redis: "shipbot-test/redis:{version}"
    mysql: "shipbot-test/mariadb:{version}"  # Debian's mariadb honours MYSQL_* as well
"""
APP_YML = """\
name: {name}
build: .
command: ["sleep", "3600"]
stop_grace_period: 1s
databases: [{databases}]
"""


@pytest.fixture
def names(docker_client) -> Iterator[dict[str, str]]:
    """This test's database names; their services and volumes go at the end."""
    tag = uuid.uuid4().hex[:6]
    made = {"postgres": f"pg{tag}", "mariadb": f"my{tag}", "redis": f"rd{tag}", "mysql": f"ms{tag}"}
    yield made
    for name in made.values():
        with contextlib.suppress(docker.errors.NotFound):
            docker_client.api.remove_service(f"db-{name}")
    remove_volumes(docker_client, [f"db-{name}-data" for name in made.values()], timeout=30)


@pytest.fixture
def bot(docker_client, tmp_path: Path) -> Iterator[Dispatcher]:
    home = tmp_path / "home"
    home.mkdir()
    (home / "shipbot.yml").write_text(SHIPBOT_YML)
    dispatcher = Dispatcher.open(home)
    yield dispatcher
    dispatcher.close()


def container_of(client: Any, service: str) -> Any:
    (task,) = client.api.tasks(filters={"service": service, "desired-state": "running"})
    return client.containers.get(task["Status"]["ContainerStatus"]["ContainerID"])


def run_in(container: Any, argv: list[str]) -> str:
    code, output = container.exec_run(argv)
    text = output.decode(errors="replace")
    assert code == 0, (argv[0], text)
    return text


async def test_databases_serve_the_apps_they_are_attached_to(
    bot, docker_client, names, tmp_path, made_apps
):
    pg, my, rd, ms = names["postgres"], names["mariadb"], names["redis"], names["mysql"]
    created = await asyncio.gather(
        say(bot, f"db create postgres {pg} --version 15", ADMIN),
        say(bot, f"db create mariadb {my} --version 10.11", ADMIN),
        say(bot, f"db create redis {rd} --version 7", ADMIN),
        say(bot, f"db create mysql {ms} --version 10.11", ADMIN),
    )
    for replies in created:
        assert result(replies).ok, replies
    listed = {row[0]: row for row in table(await say(bot, "db list", ADMIN)).rows}
    assert listed[pg][1:4] == ("postgres", "shipbot-test/postgres:15", "1/1 healthy")
    assert listed[my][1:4] == ("mariadb", "shipbot-test/mariadb:10.11", "1/1 healthy")
    assert listed[ms][1:4] == ("mysql", "shipbot-test/mariadb:10.11", "1/1 healthy")

    app = f"d{uuid.uuid4().hex[:8]}"
    made_apps.append(app)
    folder = tmp_path / app
    folder.mkdir()
    (folder / "app.yml").write_text(APP_YML.format(name=app, databases=f"{pg}, {rd}, {my}"))
    (folder / "Dockerfile").write_text("FROM busybox:latest\n")  # app.yml images: registry only
    assert result(await say(bot, f"apps add {app} --path {folder}", ADMIN)).ok
    for name in (pg, rd):
        assert result(await say(bot, f"db attach {name} {app}", ADMIN)).ok
    # the mariadb is not attached to this app: naming it is refused
    refused = failure(await say(bot, f"deploy {app}", ADMIN))
    assert (
        f"names database '{my}' in production, which is not attached to {app} (production)"
        in refused.message
    )
    (folder / "app.yml").write_text(APP_YML.format(name=app, databases=f"{pg}, {rd}"))
    deployed = result(await say(bot, f"deploy {app}", ADMIN))
    assert deployed.ok, deployed

    # the app's container has the URLs; each logs in as the database's own client does
    running = container_of(docker_client, f"{app}-production")
    database_url = run_in(running, ["sh", "-c", 'echo "$DATABASE_URL"']).strip()
    redis_url = run_in(running, ["sh", "-c", 'echo "$REDIS_URL"']).strip()
    assert database_url.startswith(f"postgres://{pg}:") and database_url.endswith(
        f"@db-{pg}:5432/{pg}"
    )
    assert redis_url.startswith("redis://default:") and redis_url.endswith(f"@db-{rd}:6379/0")
    postgres = container_of(docker_client, f"db-{pg}")
    answer = run_in(postgres, ["psql", database_url, "-tAc", "SELECT current_user"])
    assert answer.strip() == pg
    redis = container_of(docker_client, f"db-{rd}")
    assert run_in(redis, ["redis-cli", "--no-auth-warning", "-u", redis_url, "ping"]) == "PONG\n"
    # mariadb and mysql, with the credentials shipbot keeps (the app has none), the root too
    for name in (my, ms):
        creds = (await bot.engine.database(name)).credentials
        inside = container_of(docker_client, f"db-{name}")
        for user, password in ((creds.user, creds.password), ("root", creds.root_password)):
            login = ["mariadb", "-h", f"db-{name}", "-u", user, f"-p{password}", creds.database]
            assert run_in(inside, [*login, "-Nse", "SELECT 41+1"]).strip() == "42"

    # remove: the volume stays unless --delete-data
    assert result(await say(bot, f"db detach {pg} {app}", ADMIN)).ok
    # an admin passes the approval with a reason (test_backups_more_docker.py waits for one)
    kept = result(await say(bot, f"db remove {pg} --break-glass 'the test ends'", ADMIN))
    assert kept.ok, kept
    assert docker_client.api.inspect_volume(f"db-{pg}-data")["Name"] == f"db-{pg}-data"
    with pytest.raises(docker.errors.NotFound):
        docker_client.api.inspect_service(f"db-{pg}")
    gone = result(
        await say(bot, f"db remove {my} --delete-data --break-glass 'the test ends'", ADMIN)
    )
    assert gone.ok, gone
    with pytest.raises(docker.errors.NotFound):
        docker_client.api.inspect_volume(f"db-{my}-data")
