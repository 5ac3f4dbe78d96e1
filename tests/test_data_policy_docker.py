"""What widens a database's reach is an admin's word (issue 20), on the real engine with
Redis and moto as S3, through the chat: a push that lists production's database under
staging deploys nothing until an admin attaches it there; a restore into an existing
database (`--to`) waits for a second admin and leaves the data alone until then. Every name
starts with `zq`."""

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
from commands.replies import ApprovalRequest
from tests.chat import failure, remove_volumes, result, say
from tests.moto_s3 import s3_bucket
from tests.test_backups_docker import SHIPBOT_YML, redis, service_container, sh

pytestmark = pytest.mark.docker

ADMIN = "console:alice"
BOB = "console:bob"  # a second admin, who approves
DEV = "console:dev"  # deploys the app in staging, nothing else
BUCKET = "zq-backups"
APP_YML = """\
name: {name}
build: .
command: ["sleep", "3600"]
stop_grace_period: 1s
environments:
  staging:
    databases: [{db}]
"""


@pytest.fixture
def s3_url() -> Iterator[str]:
    with s3_bucket(BUCKET) as url:
        yield url


@pytest.fixture
def names(docker_client) -> Iterator[dict[str, str]]:
    tag = uuid.uuid4().hex[:6]
    made = {"prod": f"zqp{tag}", "source": f"zqs{tag}", "app": f"zqa{tag}"}
    yield made
    databases = [made["prod"], made["source"]]
    for name in databases:
        with contextlib.suppress(docker.errors.NotFound):
            docker_client.api.remove_service(f"db-{name}")
    remove_volumes(docker_client, [f"db-{name}-data" for name in databases])


@pytest.fixture
def bot(s3_url, tmp_path: Path) -> Iterator[Dispatcher]:
    home = tmp_path / "home"
    home.mkdir()
    (home / "shipbot.yml").write_text(SHIPBOT_YML.format(endpoint=s3_url, bucket=BUCKET))
    dispatcher = Dispatcher.open(home)
    yield dispatcher
    dispatcher.close()


def app_container(client: Any, service: str) -> Any:
    (task,) = client.api.tasks(filters={"service": service, "desired-state": "running"})
    return client.containers.get(task["Status"]["ContainerStatus"]["ContainerID"])


async def test_an_admin_attaches_staging_and_approves_a_restore_over_a_database(
    bot, docker_client, names, tmp_path, made_apps
):
    prod, source, app = names["prod"], names["source"], names["app"]
    created = await asyncio.gather(
        say(bot, f"db create redis {prod} --version 7", ADMIN),
        say(bot, f"db create redis {source} --version 7", ADMIN),
    )
    for replies in created:
        assert result(replies).ok, replies
    for grant in (f"{BOB} admin", f"{DEV} deployer --app {app} --env staging"):
        assert result(await say(bot, f"grant {grant}", ADMIN)).ok

    # item 6: production's database, listed under staging by a push, is not staging's
    made_apps.append(app)
    (tmp_path / app).mkdir()
    (tmp_path / app / "app.yml").write_text(APP_YML.format(name=app, db=prod))
    (tmp_path / app / "Dockerfile").write_text("FROM busybox:latest\n")  # registry images only
    assert result(await say(bot, f"apps add {app} --path {tmp_path / app}", ADMIN)).ok
    assert result(await say(bot, f"db attach {prod} {app}", ADMIN)).ok  # production's
    refused = failure(await say(bot, f"deploy {app} --env staging", DEV))
    assert refused.message.endswith(
        f"an admin runs `db attach {prod} {app} --env staging`; nothing was changed"
    )
    with pytest.raises(docker.errors.NotFound):
        docker_client.api.inspect_service(f"{app}-staging")
    assert result(await say(bot, f"db attach {prod} {app} --env staging", ADMIN)).ok
    deployed = result(await say(bot, f"deploy {app} --env staging", DEV))
    assert deployed.ok, deployed
    running = app_container(docker_client, f"{app}-staging")
    url = sh(running, ["sh", "-c", 'echo "$REDIS_URL"']).strip()
    assert url == (await bot.engine.database(prod)).url
    assert redis(docker_client, prod, "-u", url, "PING") == "PONG\n"

    # item 11: a restore of another database's backup over this one waits for Bob
    redis(docker_client, prod, "-u", url, "SET", "live", "data")
    source_url = (await bot.engine.database(source)).url
    redis(docker_client, source, "-u", source_url, "SET", "restored", "yes")
    assert result(await say(bot, f"backup run {source}", ADMIN)).ok
    backup_id = bot.engine.store.good_backups(source)[0]["id"]
    replies = await say(bot, f"restore {source} {backup_id} --to {prod}", ADMIN)
    (request,) = [r for r in replies if isinstance(r, ApprovalRequest)]
    assert request.details[0] == f"replaces the data of the existing redis database {prod}"
    assert redis(docker_client, prod, "-u", url, "GET", "live") == "data\n"  # untouched
    done = result(await say(bot, f"approve {request.id}", BOB))
    assert done.ok and done.title == f"backup {backup_id} of {source} restored into {prod}"
    assert done.details == ("db0: 1",)
    service_container(docker_client, prod)  # Redis restarted to load the backup's RDB
    assert redis(docker_client, prod, "-u", url, "GET", "restored") == "yes\n"
    assert redis(docker_client, prod, "-u", url, "EXISTS", "live") == "0\n"
