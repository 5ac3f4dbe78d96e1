"""`shipbot self deploy` against the real engine: shipbot's image, pushed to a loopback
registry, runs as a Swarm service from the root app.yml (a manager, its state on a volume,
a Swarm secret as a file); a second self deploy upgrades it, and the new bot says which
version came up and which it replaced (its state survived on the volume)."""

from __future__ import annotations

import os
import subprocess
import time
import uuid
from pathlib import Path

import pytest
import yaml

from commands.dispatch import Dispatcher
from commands.pipelines import registry_login
from tests import local_registry, self_image
from tests.chat import result, say

pytestmark = pytest.mark.docker

ROOT = Path(__file__).resolve().parent.parent
SHIPBOT = ROOT / ".venv" / "bin" / "shipbot"
LOG_WITHIN = 60.0


@pytest.fixture(scope="module")
def registry(docker_client, tmp_path_factory):
    folder = tmp_path_factory.mktemp("zi-self")
    with local_registry.running(folder, "zi-ci", "zi-right-password") as running:
        took = self_image.build(revision="zi-test")
        print(f"\nshipbot image: {'cached' if took is None else f'built in {took:.1f}s'}")
        started = time.monotonic()
        digests = {}
        for version in ("v1", "v2"):  # the same shipbot, built from two revisions
            context = folder / version
            context.mkdir()
            (context / "Dockerfile").write_text(
                f"FROM {self_image.IMAGE}\nENV SHIPBOT_REVISION=zi-{version}\n"
            )
            local = f"zi-shipbot-{version}-{uuid.uuid4().hex[:6]}:latest"  # this run's own
            local_registry.build_from(docker_client, context, local)
            digests[version] = local_registry.push(
                docker_client, running, local, "zi/shipbot", version
            )
            docker_client.api.remove_image(local)
        print(f"pushed two shipbot images in {time.monotonic() - started:.1f}s")
        try:
            yield running, digests
        finally:
            local_registry.forget(docker_client, running)


@pytest.fixture
async def home(docker_client, tmp_path: Path, made_apps, registry):
    running, _ = registry
    name = f"zi-bot-{uuid.uuid4().hex[:6]}"
    folder = tmp_path / name
    folder.mkdir()
    config = yaml.safe_load((ROOT / "app.yml").read_text())
    config["name"] = name
    # a Swarm secret of the app's own, as a file the test can read (not a chat token: the
    # bot would try to log in to Slack with it)
    config["swarm_secrets"] = [{"name": f"{name}-token", "file": "ZI_TOKEN"}]
    (folder / "app.yml").write_text(yaml.safe_dump(config))
    secret = docker_client.secrets.create(name=f"{name}-token", data=b"zi-secret-value")
    home = tmp_path / "home"
    home.mkdir()
    (home / "shipbot.yml").write_text(
        "admins: [console:alice]\nhost_paths: [/run/docker.sock, /var/run/docker.sock]\n"
    )
    bot = Dispatcher.open(home)
    assert result(await say(bot, f"apps add {name} --path {folder}")).ok
    registry_login(
        bot, registry=running.host, username="zi-ci", password=running.password, app=name, by="t"
    )
    bot.close()
    made_apps.append(name)
    try:
        yield home, name
    finally:
        remove_bot(docker_client, name, secret)


def remove_bot(client, name: str, secret) -> None:
    """The bot's service, then (once its containers are gone) its volume and secret."""
    service = f"{name}-production"
    for found in client.api.services(filters={"name": service}):
        client.api.remove_service(found["ID"])
    deadline = time.monotonic() + 30
    while client.containers.list(
        all=True, filters={"label": f"com.docker.swarm.service.name={service}"}
    ):
        if time.monotonic() > deadline:
            break
        time.sleep(0.5)
    for volume in client.volumes.list(filters={"name": f"{service}-data"}):
        volume.remove(force=True)
    secret.remove()


def self_deploy(home: Path, name: str, image: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, SHIPBOT_HOME=str(home))
    return subprocess.run(
        [str(SHIPBOT), "self", "deploy", "--app", name, "--image", image, "--as", "console:alice"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def bot_container(client, service: str):
    running = client.containers.list(
        filters={"label": f"com.docker.swarm.service.name={service}", "status": "running"}
    )
    assert len(running) == 1, running
    return running[0]


def wait_for_log(container, text: str) -> str:
    deadline = time.monotonic() + LOG_WITHIN
    while text not in (logs := container.logs().decode()):
        assert time.monotonic() < deadline, logs[-2000:]
        time.sleep(0.5)
    return logs


async def test_self_deploy_installs_then_upgrades_the_bot(home, registry, docker_client):
    folder, name = home
    running, digests = registry
    service = f"{name}-production"

    first = self_deploy(folder, name, f"{running.host}/zi/shipbot:v1")
    assert first.returncode == 0, first.stdout + first.stderr
    assert f"✅ {name} release 1 is live on production" in first.stdout
    spec = docker_client.api.inspect_service(service)["Spec"]["TaskTemplate"]
    assert spec["ContainerSpec"]["Image"] == f"{running.host}/zi/shipbot@{digests['v1']}"
    assert spec["Placement"]["Constraints"] == ["node.role==manager"]
    old = bot_container(docker_client, service)
    wait_for_log(old, "🤖 shipbot 0.1.0 (zi-v1) is up")
    assert old.exec_run(["cat", "/run/secrets/ZI_TOKEN"]).output == b"zi-secret-value"

    second = self_deploy(folder, name, f"{running.host}/zi/shipbot:v2")
    assert second.returncode == 0, second.stdout + second.stderr
    assert f"✅ {name} release 2 is live on production" in second.stdout
    new = bot_container(docker_client, service)
    assert new.id != old.id
    wait_for_log(new, "🤖 shipbot 0.1.0 (zi-v2) is up (it was 0.1.0 (zi-v1))")
    assert new.attrs["State"]["Health"]["Status"] == "healthy"


def inside(container, script: str, **env: str) -> tuple[int, str]:
    """Run ``script`` in the bot's container as the bot runs: user shipbot with the socket's
    group, so whatever it writes stays the bot's. Values come in through ``env``."""
    gid = container.exec_run(["stat", "-c", "%g", "/var/run/docker.sock"]).output.decode()
    done = container.exec_run(["sh", "-c", script], user=f"10001:{gid.strip()}", environment=env)
    return done.exit_code, done.output.decode(errors="replace")


async def test_the_bot_upgrades_itself_and_settles_its_own_release(home, registry, docker_client):
    folder, name = home
    running, digests = registry
    service = f"{name}-production"
    assert self_deploy(folder, name, f"{running.host}/zi/shipbot:v1").returncode == 0
    old = bot_container(docker_client, service)
    wait_for_log(old, "🤖 shipbot 0.1.0 (zi-v1) is up")

    # the bot's own state (its volume) learns about itself, as an admin would set it up
    code, out = inside(
        old,
        'mkdir -p /data/src && printf %s "$APP_YML" > /data/src/app.yml '
        '&& printf %s "$CONFIG" > /data/shipbot.yml '
        f'&& shipbot chat "apps add {name} --path /data/src" --as console:alice '
        f'&& printf "%s\\n" "$PW" | shipbot registry login {running.host} --user zi-ci '
        f"--app {name}",
        APP_YML=(folder.parent / name / "app.yml").read_text(),
        CONFIG="admins: [console:alice]\nhost_paths: [/run/docker.sock, /var/run/docker.sock]\n",
        PW=running.password,
    )
    assert code == 0, out

    # the running bot deploys its successor; stopping first, it is stopped mid-rollout
    inside(
        old,
        f"shipbot self deploy --app {name} --image {running.host}/zi/shipbot:v2 --as console:alice",
    )
    deadline = time.monotonic() + LOG_WITHIN
    while True:
        found = docker_client.containers.list(
            filters={"label": f"com.docker.swarm.service.name={service}", "status": "running"}
        )
        if found and found[0].id != old.id:
            break
        assert time.monotonic() < deadline
        time.sleep(0.5)
    new = found[0]
    wait_for_log(new, "🤖 shipbot 0.1.0 (zi-v2) is up (it was 0.1.0 (zi-v1))")
    image = docker_client.api.inspect_service(service)["Spec"]["TaskTemplate"]["ContainerSpec"]
    assert image["Image"] == f"{running.host}/zi/shipbot@{digests['v2']}"

    # the new bot reads the outcome its predecessor could not see from Swarm
    deadline = time.monotonic() + LOG_WITHIN
    while True:
        code, out = inside(new, f'shipbot chat "releases {name}" --as console:alice')
        if "live" in out:
            break
        assert time.monotonic() < deadline, out
        time.sleep(2)
    assert code == 0 and "zi/shipbot@" in out
