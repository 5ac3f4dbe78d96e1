"""app.yml's ``image:`` against the real engine and Debian's docker-registry on loopback:
only the app's own registry login is ever used (never the control plane's docker config),
an image another app pulled is not usable from the engine's cache, another app's release
image and a bare image id are refused under any spelling, an approval binds the digest a
tag had when it was requested, and `registry login` checks the password first."""

from __future__ import annotations

import base64
import json
import socket
import uuid
from pathlib import Path

import pytest

from commands.dispatch import Dispatcher
from commands.pipelines import PipelineError, registry_login
from core.swarm import registry_api
from tests import local_registry
from tests.chat import failure, fetch, result, say, task_addresses

pytestmark = pytest.mark.docker

APP_YML = """\
name: {name}
image: {image}
port: 8080
replicas: 1
healthcheck: {{cmd: ["wget", "-qO-", "http://127.0.0.1:8080/"], interval: 1s, timeout: 2s,
  retries: 3, start_period: 1s}}
stop_grace_period: 1s
environments:
  production: {{approval: true}}
  staging: {{}}
"""


@pytest.fixture(scope="module")
def registry(docker_client, tmp_path_factory):
    with local_registry.with_web_images(docker_client, tmp_path_factory.mktemp("zp")) as found:
        yield found


@pytest.fixture
def plane(registry, tmp_path: Path, monkeypatch, made_apps):
    """A control plane whose own docker config can log in to the registry (as a host where
    someone ran `docker login`), and two apps: a and b."""
    running, _ = registry
    config = tmp_path / "docker-config"
    config.mkdir()
    auth = base64.b64encode(f"{running.user}:{running.password}".encode()).decode()
    (config / "config.json").write_text(json.dumps({"auths": {running.host: {"auth": auth}}}))
    monkeypatch.setenv("DOCKER_CONFIG", str(config))
    home = tmp_path / "home"
    home.mkdir()
    (home / "shipbot.yml").write_text("admins: [console:alice]\n")
    bot = Dispatcher.open(home)
    tag = uuid.uuid4().hex[:6]
    names = {"a": f"zpa{tag}", "b": f"zpb{tag}"}
    made_apps.extend(names.values())
    yield bot, names, tmp_path
    bot.close()


def write(folder: Path, name: str, image: str) -> None:
    folder.mkdir(exist_ok=True)
    (folder / "app.yml").write_text(APP_YML.format(name=name, image=image))


def serves(client, service: str) -> list[str]:
    return [fetch(address) for address in task_addresses(client, service)]


def nothing_of(bot: Dispatcher, client, name: str) -> None:
    for env in ("staging", "production"):
        assert client.api.services(filters={"name": f"{name}-{env}"}) == []
    assert bot.engine.store.release_numbers(name) == []


async def test_an_app_yml_image_is_the_apps_own_registry_image(plane, registry, docker_client):
    bot, names, tmp_path = plane
    running, digests = registry
    a, b = names["a"], names["b"]
    web = f"{running.host}/zi/web"
    local_registry.retag(running, "zi/web", "v1", "latest")
    for name in (a, b):
        write(tmp_path / name, name, f"{web}:latest")
        assert result(await say(bot, f"apps add {name} --path {tmp_path / name}")).ok
    await say(bot, f"grant console:bob deployer --app {a}")

    # a wrong password is not stored
    with pytest.raises(PipelineError) as wrong:
        registry_login(bot, registry=running.host, username="zi-ci", password="no", app=a, by="t")
    assert str(wrong.value) == (
        f"the registry {running.host} refused the login of zi-ci: check the user name and the "
        f"password (or token), then run `shipbot registry login {running.host} --user zi-ci` "
        "again; nothing was stored"
    )
    assert bot.engine.store.registry_logins() == []

    # the control plane's own docker login never stands in for b's
    refused = failure(await say(bot, f"deploy {b} --env staging"))
    assert refused.message == (
        f"the registry {running.host} wants credentials for {web}:latest and shipbot has none: "
        f"an admin runs `shipbot registry login {running.host} --user … [--app APP]`; nothing "
        "was changed"
    )
    nothing_of(bot, docker_client, b)

    # a's own login: app.yml's private image runs by the digest `latest` had
    registry_login(
        bot, registry=running.host, username="zi-ci", password=running.password, app=a, by="t"
    )
    deployed = await say(bot, f"deploy {a} --env staging")
    assert result(deployed).ok, deployed
    assert serves(docker_client, f"{a}-staging") == ["one\n"]
    release = f"shipbot/{a}:1"  # the release's own tag, as for a build
    assert docker_client.api.inspect_image(release)["RepoDigests"] == [f"{web}@{digests['v1']}"]
    # a ref is the tag; one the registry does not have changes nothing
    assert result(await say(bot, f"deploy {a} v2 --env staging")).ok
    assert serves(docker_client, f"{a}-staging") == ["two\n"]
    missing = failure(await say(bot, f"deploy {a} v9 --env staging"))
    assert missing.message == (
        f"{web}:v9 is not in the registry {running.host}: check the tag or digest CI pushed; "
        "nothing was changed"
    )
    assert bot.engine.store.release_numbers(a) == [1, 2]

    # the copy a pulled is on the engine; b naming its digest still asks the registry
    assert docker_client.api.inspect_image(f"{web}@{digests['v1']}")["Id"]
    write(tmp_path / b, b, f"{web}@{digests['v1']}")
    cached = failure(await say(bot, f"deploy {b} --env staging"))
    assert cached.message.startswith(
        f"the registry {running.host} wants credentials for {web}@{digests['v1']} and "
        "shipbot has none"
    )
    nothing_of(bot, docker_client, b)

    # another app's release image, under Docker Hub's spellings, and a bare image id
    other = f"shipbot/{a}x"
    docker_client.api.tag("busybox:latest", other, "1")
    try:
        for image in (f"docker.io/{other}:1", f"index.docker.io/{other}:1"):
            write(tmp_path / b, b, image)
            borrowed = failure(await say(bot, f"deploy {b} --env staging"))
            assert borrowed.message == (
                f"{image} is a shipbot release image; app.yml's `image:` takes an image from a "
                "registry (a release of this app comes back with `rollback`), nothing was "
                "changed"
            )
        image_id = docker_client.api.inspect_image(f"{other}:1")["Id"][7:19]
        write(tmp_path / b, b, f'"{image_id}"')
        bare = failure(await say(bot, f"deploy {b} --env staging"))
        assert bare.message.startswith(f"{image_id!r} is not an image reference")
    finally:
        docker_client.api.remove_image(f"{other}:1")
    nothing_of(bot, docker_client, b)

    # an approval binds the digest `latest` had when it was requested
    asked = await say(bot, f"deploy {a}", user="console:bob")
    request = next(r for r in asked if type(r).__name__ == "ApprovalRequest")
    assert any(digests["v1"] in line for line in request.details)
    local_registry.retag(running, "zi/web", "v2", "latest")  # a new `latest` meanwhile
    stale = failure(await say(bot, f"approve {request.id}"))
    assert stale.message.startswith(f"request {request.id} changed since requested")
    assert docker_client.api.services(filters={"name": f"{a}-production"}) == []
    assert bot.engine.store.release_numbers(a) == [1, 2]


async def test_a_registry_that_does_not_answer_the_login_check(plane, monkeypatch):
    bot, _, _ = plane
    monkeypatch.setattr(registry_api, "LOGIN_TIMEOUT", 2)
    with socket.socket() as silent:  # takes the connection, never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        host = f"127.0.0.1:{silent.getsockname()[1]}"
        with pytest.raises(PipelineError) as slow:
            registry_login(bot, registry=host, username="ci", password="pw", app=None, by="t")
    assert str(slow.value) == (
        f"the registry {host} did not answer shipbot's login check in time: check that {host} "
        f"is up and that the Docker engine reaches it, then run `shipbot registry login {host} "
        "--user ci` again; nothing was stored"
    )
    assert bot.engine.store.registry_logins() == []
