"""A shipbot killed mid-work, on the real engine: SIGKILL during a release command, a
volume backup and a `run`, each in its own `shipbot chat` process. A `shipbot serve`
started afterwards removes the job and helper services each left (their owner process is
provably gone: swept at once, not hours later) and records each piece of work as
interrupted: the deployment, the backup row, and an audit row per leftover. A job of
another control plane on the same engine is left alone.

Every name here starts with ``zw``; the test removes what it made.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import threading
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import docker.errors
import pytest

from commands.dispatch import Dispatcher
from core.data.volumes import LABEL_HELPER
from core.names import LABEL_PLANE
from core.process import LABEL_OWNER
from core.store import Store
from core.swarm.jobs import LABEL_JOB_KIND
from tests.chat import remove_apps, remove_volumes, result, say
from tests.moto_s3 import KEYS
from tests.test_serve import spawn_cli, stop_cli
from tests.waiting import until

pytestmark = pytest.mark.docker

ADMIN = "console:alice"
DOCKERFILE = """\
FROM busybox
RUN mkdir -p /www && echo zw > /www/index.html
CMD ["httpd", "-f", "-p", "8080", "-h", "/www"]
"""
# the release command is quick until /data/slow exists; then it outlasts the test
APP_YML = """\
name: {name}
build: .
port: 8080
replicas: 1
volumes: ["data:/data"]
healthcheck: {{cmd: [wget, -qO-, "http://127.0.0.1:8080/"], interval: 1s, timeout: 5s,
  retries: 5, start_period: 1s}}
stop_grace_period: 1s
release: [sh, -c, "if [ -f /data/slow ]; then sleep 600; fi"]
"""
SHIPBOT_YML = """\
admins: [console:alice]
alerts: {{check_seconds: 1, usage_image: null}}
backups:
  s3:
    endpoint: "{endpoint}"
    bucket: zw-backups
    access_key_env: TEST_S3_ACCESS
    secret_key_env: TEST_S3_SECRET
"""


@contextlib.contextmanager
def silent_s3() -> Iterator[str]:
    """An endpoint that takes connections and never answers: a backup's upload hangs
    there, so the process can be killed mid-backup."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        server.settimeout(0.2)
        while not stop.is_set():
            with contextlib.suppress(TimeoutError, OSError):
                held.append(server.accept()[0])

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.getsockname()[1]}"
    finally:
        stop.set()
        thread.join(5)
        for conn in held:
            conn.close()
        server.close()


def helpers_of(client: Any, plane_id: str) -> list[str]:
    """This plane's job and helper services on the engine."""
    out = set()
    for label in (LABEL_JOB_KIND, LABEL_HELPER):
        for service in client.api.services(filters={"label": label}):
            if service["Spec"]["Labels"].get(LABEL_PLANE) == plane_id:
                out.add(service["Spec"]["Name"])
    return sorted(out)


async def killed_during(env: dict[str, str], text: str, started: Callable[[], Any]) -> None:
    """`shipbot chat TEXT` in its own process, SIGKILLed once ``started()`` holds."""
    process = await spawn_cli(env, "chat", "--as", ADMIN, text)
    try:
        await until(started, 90, f"`{text}` under way")
    finally:
        process.send_signal(signal.SIGKILL)  # no clean stop: as a crash or an OOM kill
        await process.wait()


@pytest.fixture
def app(tmp_path: Path, docker_client, made_apps) -> Iterator[tuple[str, Path]]:
    name = f"zw{uuid.uuid4().hex[:8]}"
    folder = tmp_path / name
    folder.mkdir()
    (folder / "Dockerfile").write_text(DOCKERFILE)
    (folder / "app.yml").write_text(APP_YML.format(name=name))
    made_apps.append(name)
    yield name, folder
    for label in (LABEL_JOB_KIND, LABEL_HELPER):  # whatever a failed run left
        for service in docker_client.api.services(filters={"label": label}):
            if service["Spec"]["Name"].startswith((f"{name}-", "shipbot-volume-")) and (
                service["Spec"]["Labels"].get("shipbot.volume.helper", name).startswith(name)
            ):
                with contextlib.suppress(docker.errors.NotFound):
                    docker_client.api.remove_service(service["ID"])
    remove_apps(docker_client, [name], 40.0)
    remove_volumes(docker_client, [f"{name}-production-data"])


async def test_a_bot_killed_mid_work_leaves_nothing_running_and_says_it_was_interrupted(
    docker_client, tmp_path, app
):
    name, folder = app
    home = tmp_path / "home"
    home.mkdir()
    foreign = f"{name}-other_run-1"
    with silent_s3() as endpoint:
        (home / "shipbot.yml").write_text(SHIPBOT_YML.format(endpoint=endpoint))
        # a short lock time-out: the next command takes the killed one's app lock soon
        env = {**os.environ, **KEYS, "SHIPBOT_HOME": str(home), "SHIPBOT_LOCK_TTL": "2"}
        bot = Dispatcher.open(home)
        store: Store = bot.engine.store
        plane_id = bot.engine.plane.id
        try:
            assert result(await say(bot, f"apps add {name} --path {folder}", ADMIN)).ok
            first = result(await say(bot, f"deploy {name}", ADMIN))
            assert first.ok, first
            assert result(await say(bot, f"run {name} -- touch /data/slow", ADMIN)).ok
            # another control plane's job on this engine: a sweep of ours never touches it
            docker_client.api.create_service(
                {"ContainerSpec": {"Image": "busybox:latest", "Command": ["sleep", "600"]}},
                name=foreign,
                labels={LABEL_JOB_KIND: "run", LABEL_PLANE: "another-plane", LABEL_OWNER: "x"},
            )
            backup = f"{name}/production/data"
            await killed_during(
                env,
                f"volume backup {name} data",
                lambda: store.running_backups() and helpers_of(docker_client, plane_id),
            )
            await asyncio.sleep(2.5)  # the killed one's lock times out (SHIPBOT_LOCK_TTL)
            await killed_during(
                env,
                f"run {name} -- sleep 600",
                lambda: any("_run-" in s for s in helpers_of(docker_client, plane_id)),
            )
            await asyncio.sleep(2.5)
            await killed_during(
                env,
                f"deploy {name}",
                lambda: any("_release-" in s for s in helpers_of(docker_client, plane_id)),
            )
            left = helpers_of(docker_client, plane_id)
            assert len(left) == 3, left  # what the three killed processes left running
            serve = await spawn_cli(env)
            try:
                await until(
                    lambda: not helpers_of(docker_client, plane_id), 60, "the leftovers swept"
                )
                swept = await until(
                    lambda: (
                        [r for r in store.audit_log(limit=50) if r["user"] == "shipbot"]
                        if len([r for r in store.audit_log(limit=50) if r["user"] == "shipbot"])
                        >= 3
                        else None
                    ),
                    30,
                    "three audit rows",
                )
            finally:
                await stop_cli(serve)
            assert sorted(r["command"] for r in swept) == sorted(
                f"sweep {service} on local" for service in left
            )
            assert {r["result"] for r in swept} == {"interrupted"}
            assert {r["app"] for r in swept if "_run-" in r["command"]} == {name}
            (row,) = store.backups(backup)
            assert row["status"] == "interrupted", row
            deploys = store._rows("deployments", "app = ? AND kind = 'deploy'", [name])
            assert [d["status"] for d in deploys] == ["succeeded", "interrupted"], deploys
            # the other plane's job is still there
            assert docker_client.api.inspect_service(foreign)["Spec"]["Name"] == foreign
        finally:
            with contextlib.suppress(docker.errors.NotFound):
                docker_client.api.remove_service(foreign)
            bot.close()
