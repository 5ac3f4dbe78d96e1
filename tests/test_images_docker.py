"""Registry images against the real engine and Debian's docker-registry on loopback: an
image CI pushed deploys by tag and by digest, with the app's login handed to Swarm; a
missing tag or a wrong login is a clear error that changes nothing (a wrong password is not
even stored); rollback goes back."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from commands.dispatch import Dispatcher
from commands.pipelines import PipelineError, registry_login
from tests import local_registry
from tests.chat import failure, fetch, logs, result, say, table, task_addresses

pytestmark = pytest.mark.docker

APP_YML = """\
name: {name}
build: .
port: 8080
replicas: 1
healthcheck: {{cmd: ["wget", "-qO-", "http://127.0.0.1:8080/"], interval: 1s, timeout: 2s,
  retries: 3, start_period: 1s}}
stop_grace_period: 1s
"""


@pytest.fixture(scope="module")
def registry(docker_client, tmp_path_factory):
    with local_registry.with_web_images(docker_client, tmp_path_factory.mktemp("zi")) as found:
        yield found


@pytest.fixture
def bot(docker_client, tmp_path: Path, made_apps):
    name = f"zi{uuid.uuid4().hex[:6]}"
    folder = tmp_path / name
    folder.mkdir()
    (folder / "app.yml").write_text(APP_YML.format(name=name))
    # a build would fail: whatever runs came from the registry
    (folder / "Dockerfile").write_text("FROM zi-no-such-base\n")
    home = tmp_path / "home"
    home.mkdir()
    (home / "shipbot.yml").write_text("admins: [console:alice]\n")
    dispatcher = Dispatcher.open(home)
    made_apps.append(name)
    yield dispatcher, name, folder
    dispatcher.close()


def service_image(client, service: str) -> str:
    return client.api.inspect_service(service)["Spec"]["TaskTemplate"]["ContainerSpec"]["Image"]


def page(client, service: str) -> list[str]:
    return [fetch(address) for address in task_addresses(client, service)]


async def test_registry_image_story(bot, registry, docker_client):
    dispatcher, name, folder = bot
    running, digests = registry
    service = f"{name}-production"
    assert result(await say(dispatcher, f"apps add {name} --path {folder}")).ok
    v1 = f"{running.host}/zi/web:v1"

    # no login: the registry wants one, shipbot says so and changes nothing
    refused = failure(await say(dispatcher, f"deploy {name} --image {v1}"))
    assert refused.message == (
        f"the registry {running.host} wants credentials for {v1} and shipbot has none: an "
        f"admin runs `shipbot registry login {running.host} --user … [--app APP]`; nothing "
        "was changed"
    )
    # a wrong password: refused by the registry before it is stored
    with pytest.raises(PipelineError, match=f"the registry {running.host} refused the login"):
        registry_login(
            dispatcher,
            registry=running.host,
            username="zi-ci",
            password="zi-wrong",
            app=name,
            by="t",
        )
    assert dispatcher.engine.store.registry_logins() == []
    assert docker_client.api.services(filters={"name": service}) == []
    assert dispatcher.engine.store.release_numbers(name) == []

    # the right login: by tag, run by the digest the registry serves
    registry_login(
        dispatcher,
        registry=running.host,
        username="zi-ci",
        password=running.password,
        app=name,
        by="t",
    )
    first = await say(dispatcher, f"deploy {name} --image {v1}")
    assert result(first).ok, first
    pinned_v1 = f"{running.host}/zi/web@{digests['v1']}"
    assert service_image(docker_client, service) == pinned_v1
    assert page(docker_client, service) == ["one\n"]
    shown = logs(await say(dispatcher, f"logs {name}"))
    assert any("response:200" in line for line in shown), shown  # the live release's tasks
    releases = table(await say(dispatcher, f"releases {name}"))
    assert releases.rows[0][:2] == ("1", "live") and releases.rows[0][4] == pinned_v1

    # Swarm holds the login: with the image gone from the engine, a restart pulls it again
    docker_client.api.remove_image(pinned_v1, force=True)
    assert result(await say(dispatcher, f"restart {name}")).ok
    assert page(docker_client, service) == ["one\n"]

    # a tag the registry does not have: a clear error, release 1 still serves
    missing = failure(await say(dispatcher, f"deploy {name} --image {running.host}/zi/web:v9"))
    assert missing.message == (
        f"{running.host}/zi/web:v9 is not in the registry {running.host}: check the tag or "
        "digest CI pushed; nothing was changed"
    )
    assert service_image(docker_client, service) == pinned_v1
    assert dispatcher.engine.store.release_numbers(name) == [1]

    # by digest
    pinned_v2 = f"{running.host}/zi/web@{digests['v2']}"
    second = await say(dispatcher, f"deploy {name} --image {pinned_v2}")
    assert result(second).ok, second
    assert service_image(docker_client, service) == pinned_v2
    assert page(docker_client, service) == ["two\n"]

    # rollback works as for built releases
    back = await say(dispatcher, f"rollback {name}")
    assert result(back).ok, back
    assert service_image(docker_client, service) == pinned_v1
    assert page(docker_client, service) == ["one\n"]

    # another app's release image is not an image from a registry
    other = failure(await say(dispatcher, f"deploy {name} --image shipbot/other:1"))
    assert other.message.startswith("shipbot/other:1 is a shipbot release image")
