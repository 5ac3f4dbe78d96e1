"""Release commands and one-off ``run`` on the real engine: a Swarm job on the new image,
before the service changes; a failure stops the deploy with the old release serving.

Every service, volume and image here is named ``zr…`` (this suite's prefix)."""

from __future__ import annotations

import contextlib
import time
import uuid
from pathlib import Path

import docker
import pytest

from commands.dispatch import Dispatcher
from commands.pipelines import registry_login
from commands.replies import FAILED
from tests import local_registry
from tests.chat import failure, fetch, logs, remove_apps, result, say, task_addresses

pytestmark = pytest.mark.docker

# Each task appends "serve <page>" to the shared volume as it starts; the release command
# appends "release <page>", so the file's order shows which ran first.
DOCKERFILE = """\
FROM busybox
COPY www /www
CMD ["sh", "-c", "echo serve $(cat /www/index.html) >> /data/log; \
exec httpd -f -p 8080 -h /www"]
"""
APP_YML = """\
name: {name}
build: .
port: 8080
replicas: 1
volumes: ["data:/data"]
env: {{GREETING: hi}}
healthcheck: {{cmd: [wget, -qO-, "http://127.0.0.1:8080/"], interval: 1s, timeout: 2s,
  retries: 3, start_period: 1s}}
stop_grace_period: 1s
release: {release}
"""
GOOD = '[sh, -c, "echo release $(cat /www/index.html) $GREETING >> /data/log; echo migrated"]'
BAD = '[sh, -c, "echo release $(cat /www/index.html) >> /data/log; echo users exists; exit 4"]'


@pytest.fixture
def app(tmp_path: Path) -> tuple[str, Path]:
    name = f"zr{uuid.uuid4().hex[:8]}"
    folder = tmp_path / name
    (folder / "www").mkdir(parents=True)
    (folder / "Dockerfile").write_text(DOCKERFILE)
    return name, folder


@pytest.fixture
def bot(docker_client, tmp_path: Path, app, made_apps):
    home = tmp_path / "home"
    home.mkdir()
    (home / "shipbot.yml").write_text("admins: [console:alice]\n")
    dispatcher = Dispatcher.open(home)
    made_apps.append(app[0])
    yield dispatcher
    dispatcher.close()
    remove_apps(docker_client, [app[0]])  # its tasks hold the volume
    _remove_volume(docker_client, f"{app[0]}-production-data")


def _remove_volume(client: docker.DockerClient, name: str) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            client.api.remove_volume(name)
            return
        except docker.errors.NotFound:
            return
        except docker.errors.APIError:  # a stopping container still holds it
            time.sleep(0.5)


def write(folder: Path, name: str, page: str, release: str) -> None:
    (folder / "www" / "index.html").write_text(page + "\n")
    (folder / "app.yml").write_text(APP_YML.format(name=name, release=release))


def job_containers(client: docker.DockerClient, name: str) -> list[str]:
    """Containers of the app's jobs on this node (Swarm leaves a removed job's behind)."""
    return [
        c["Id"]
        for c in client.api.containers(all=True)
        if c["Labels"].get("com.docker.swarm.service.name", "").startswith(f"{name}-production_")
    ]


def jobs_left(client: docker.DockerClient, name: str) -> list[str]:
    return [s["Spec"]["Name"] for s in client.api.services() if s["Spec"]["Name"].startswith(name)]


async def test_release_command_runs_once_before_traffic_and_a_failure_keeps_the_old_release(
    bot, app, docker_client
):
    name, folder = app
    service = f"{name}-production"
    write(folder, name, "one", GOOD)
    assert result(await say(bot, f"apps add {name} --path {folder}")).ok

    first = await say(bot, f"deploy {name}")
    assert result(first).ok, first
    assert "migrated" in logs(first)  # the job's output streamed into the deploy
    assert jobs_left(docker_client, name) == [service]  # the job service is gone
    assert [fetch(a) for a in task_addresses(docker_client, service)] == ["one\n"]

    # run: the live release's image, env and volume; output, then the exit code
    shown = await say(bot, f"run {name} -- cat /data/log")
    assert result(shown).ok, shown
    assert logs(shown) == ["release one hi", "serve one"]  # once, and before the task
    assert result(shown).title == f"`cat /data/log` on {name} (production): it exited with 0"
    code = await say(bot, f"run {name} -- sh -c 'echo to stdout; echo to stderr >&2; exit 7'")
    assert sorted(logs(code)) == ["to stderr", "to stdout"]
    assert not result(code).ok and result(code).fields["exit code"] == "7"

    # a release command that fails: the deploy stops, its output quoted, release 1 serves
    write(folder, name, "two", BAD)
    broken = await say(bot, f"deploy {name}")
    stopped = failure(broken)
    assert stopped.kind == FAILED
    assert stopped.message == (
        "the release command `sh -c 'echo release $(cat /www/index.html) >> /data/log; "
        f"echo users exists; exit 4'` of {name} failed: it exited with 4. Release 2 was not "
        "deployed; what ran before keeps serving"
    )
    assert stopped.log_tail == ("users exists",)
    assert [fetch(a) for a in task_addresses(docker_client, service)] == ["one\n"]
    spec = docker_client.api.inspect_service(service)["Spec"]
    assert spec["TaskTemplate"]["ContainerSpec"]["Image"] == f"shipbot/{name}:1"
    assert jobs_left(docker_client, name) == [service]
    after = await say(bot, f"run {name} -- cat /data/log")
    assert logs(after) == ["release one hi", "serve one", "release two"]
    statuses = [(r.number, r.status) for r in bot.engine.store.releases(name, "production")]
    assert statuses == [(2, "failed"), (1, "live")]
    audit = [(r["command"].split()[0], r["result"]) for r in bot.engine.store.audit_log(name)]
    assert audit[:4] == [("run", "ok"), ("deploy", "failed"), ("run", "failed"), ("run", "ok")]

    # an update: the command runs once on release 3's image before its task starts
    write(folder, name, "three", GOOD)
    assert result(await say(bot, f"deploy {name}")).ok
    assert [fetch(a) for a in task_addresses(docker_client, service)] == ["three\n"]
    final = logs(await say(bot, f"run {name} -- cat /data/log"))
    assert job_containers(docker_client, name) == []  # none holds the volume
    assert final == [
        "release one hi",
        "serve one",
        "release two",
        "release three hi",
        "serve three",
    ]
    with contextlib.suppress(docker.errors.APIError):
        docker_client.api.remove_image(f"shipbot/{name}:2", force=True)


# build limits (shipbot.yml ``build:``): a build over its time or memory fails and changes
# nothing
SLOW = "FROM busybox\nRUN echo started && sleep 60 && echo zr-too-late\n"
GREEDY = "FROM busybox\nRUN dd if=/dev/zero of=/dev/null bs=300M count=1\n"


@pytest.fixture
def limited(docker_client, tmp_path: Path, made_apps):
    home = tmp_path / "limited-home"
    home.mkdir()
    (home / "shipbot.yml").write_text(
        "admins: [console:alice]\nbuild: {timeout_seconds: 4, memory: 48M}\n"
    )
    dispatcher = Dispatcher.open(home)
    yield dispatcher
    dispatcher.close()


def sleeping_build_containers(client: docker.DockerClient) -> list[str]:
    return [c["Id"] for c in client.api.containers(all=True) if "zr-too-late" in c["Command"]]


async def test_a_build_over_its_time_limit_is_stopped_and_changes_nothing(
    limited, app, docker_client, made_apps
):
    name, folder = app
    made_apps.append(name)
    (folder / "Dockerfile").write_text(SLOW)
    write(folder, name, "one", GOOD)
    assert result(await say(limited, f"apps add {name} --path {folder}")).ok
    started = time.monotonic()
    stopped = failure(await say(limited, f"deploy {name}"))
    took = time.monotonic() - started
    assert stopped.message == (
        f"the build of {name} took longer than 4s (shipbot.yml build.timeout_seconds) and was "
        "stopped; nothing was deployed"
    )
    assert "started" in stopped.log_tail
    assert took < 30, took  # not the minute the step would take
    assert docker_client.api.images(name=f"shipbot/{name}") == []
    assert jobs_left(docker_client, name) == []
    deadline = time.monotonic() + 10
    while sleeping_build_containers(docker_client) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert sleeping_build_containers(docker_client) == []  # the engine cancelled the step
    assert limited.engine.store.releases(name, "production") == []  # no number used


async def test_a_build_over_its_memory_limit_fails_with_the_limit_named(
    limited, app, docker_client, made_apps
):
    name, folder = app
    made_apps.append(name)
    (folder / "Dockerfile").write_text(GREEDY)
    write(folder, name, "one", GOOD)
    assert result(await say(limited, f"apps add {name} --path {folder}")).ok
    stopped = failure(await say(limited, f"deploy {name}"))
    assert stopped.message.endswith(
        "returned a non-zero code: 137 (a build step was killed: it may have needed more than "
        "the 48 MiB shipbot.yml build.memory allows)"
    ), stopped.message
    assert docker_client.api.images(name=f"shipbot/{name}") == []
    assert jobs_left(docker_client, name) == []


async def test_release_command_of_a_registry_image_runs_with_the_apps_login(
    docker_client, tmp_path: Path, made_apps
):
    """``deploy --image`` from a registry that wants a login: the job is posted with the
    app's credentials for Swarm's nodes, as the service is, and runs before it."""
    with local_registry.running(tmp_path / "registry", "zr-ci", "zr-registry-pass") as registry:
        local = f"zr-web-{uuid.uuid4().hex[:6]}:latest"
        local_registry.build_web(docker_client, tmp_path, local, "one")
        local_registry.push(docker_client, registry, local, "zr/web", "v1")
        docker_client.api.remove_image(local)
        name = f"zr{uuid.uuid4().hex[:8]}"
        made_apps.append(name)
        folder = tmp_path / name
        folder.mkdir()
        (folder / "Dockerfile").write_text("FROM zr-no-such-base\n")  # never built
        (folder / "app.yml").write_text(
            APP_YML.format(
                name=name, release='[sh, -c, "echo release from $(cat /www/index.html)"]'
            )
        )
        home = tmp_path / "home"
        home.mkdir()
        (home / "shipbot.yml").write_text("admins: [console:alice]\n")
        bot = Dispatcher.open(home)
        try:
            assert result(await say(bot, f"apps add {name} --path {folder}")).ok
            registry_login(
                bot,
                registry=registry.host,
                username="zr-ci",
                password=registry.password,
                app=name,
                by="t",
            )
            deployed = await say(bot, f"deploy {name} --image {registry.host}/zr/web:v1")
            assert result(deployed).ok, deployed
            assert "release from one" in logs(deployed)
            assert jobs_left(docker_client, name) == [f"{name}-production"]
            assert job_containers(docker_client, name) == []
        finally:
            bot.close()
            remove_apps(docker_client, [name])
            _remove_volume(docker_client, f"{name}-production-data")
            # by reference, not by id: the same page built elsewhere has this image's id
            local_registry.forget(docker_client, registry)
