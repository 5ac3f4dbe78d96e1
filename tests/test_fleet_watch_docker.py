"""A server added while `shipbot serve` runs is watched with no restart (issue 23, show 3):
serve runs in its own process; a node with sshd and its own engine (tests/multinode.py)
is added over SSH meanwhile; an app that crash-loops is deployed there. Serve's alert for
it is posted within ``check_seconds`` + 10 s of the failure that makes it a crash loop,
and serve is the same process throughout.

Every name here starts with ``zfw``; the node is removed at the end.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import uuid
from collections.abc import Iterator

import pytest

from commands.dispatch import Dispatcher
from core.servers import keys
from core.watch.facts import engine_time
from tests.multinode import Cluster, Node, build
from tests.multinode_fixtures import add_server, crash_looping, deploy_new
from tests.test_serve import spawn_cli, stop_cli
from tests.waiting import until

pytestmark = pytest.mark.docker

PREFIX = "zfw"
SUBNET = "192.168.163.0/24"
TRAEFIK_IMAGE = "shipbot-test/traefik:v3"
ADMIN = "console:alice"
CHECK_SECONDS = 2
DOCKERFILE = crash_looping(12)  # healthy and serving for 12 s
APP_YML = """\
name: {name}
build: .
port: 8080
https: false
healthcheck: {{cmd: [wget, -qO-, "http://127.0.0.1:8080/"], interval: 1s, timeout: 5s,
  retries: 5}}
stop_grace_period: 1s
environments:
  production: {{server: zfw-1, replicas: 1}}
"""


@pytest.fixture
def node(docker_client) -> Iterator[tuple[Node, str]]:
    build()
    private = keys.generate()
    public = keys.public_line(keys.load(private), "shipbot-test")
    up = Cluster(PREFIX, SUBNET, count=1)
    try:
        up.up(public, ["busybox:latest", TRAEFIK_IMAGE])  # what it would pull
        yield up.nodes[0], private
    finally:
        up.down()


def failures(node: Node, service: str) -> list[float]:
    """When each of ``service``'s tasks failed, by the node's engine, oldest first."""
    ids = node.sh("docker", "service", "ps", "-q", service, check=False).stdout.split()
    if not ids:
        return []
    shown = node.sh(
        "docker", "inspect", "--format", "{{.Status.State}} {{json .Status.Timestamp}}", *ids,
        check=False,
    ).stdout.splitlines()  # fmt: skip
    stamps = [line.split()[1].strip('"') for line in shown if line.startswith("failed ")]
    return sorted(engine_time(stamp) for stamp in stamps)


async def test_a_server_added_while_serving_is_watched_and_its_crash_loop_alerted(
    node, tmp_path, docker_client, made_apps
):
    server, private = node
    home = tmp_path / "home"
    home.mkdir()
    (home / "shipbot.yml").write_text(
        f"admins: [{ADMIN}]\n"
        "server_apps: {zfw-1: ['zfw*']}\n"
        "notify:\n  - {platform: console, channel: ops, kinds: [alerts]}\n"
        f"alerts: {{check_seconds: {CHECK_SECONDS}, crash_restarts: 2, guard_seconds: 0,"
        " usage_image: null}\n"
        f"edge: {{image: {TRAEFIK_IMAGE}, "
        "acme: {ca_server: 'https://127.0.0.1:9/dir', volume: shipbot-edge-acme}}\n"
    )
    bot = Dispatcher.open(home)
    store = bot.engine.store
    name = f"zfw{uuid.uuid4().hex[:6]}"
    made_apps.append(name)
    serve = await spawn_cli({**os.environ, "SHIPBOT_HOME": str(home)})
    try:
        await add_server(bot, "zfw-1", server, private, ADMIN)
        files = {"Dockerfile": DOCKERFILE, "app.yml": APP_YML.format(name=name)}
        await deploy_new(bot, tmp_path / name, files, ADMIN)  # healthy at first

        service = f"{name}-production"
        looped = await until(lambda: failures(server, service)[1:], 90, "two failed tasks")
        title = f"🔁 {name} (production) on zfw-1 is crash-looping"

        def alerted() -> list[dict]:
            rows = store._rows("outbox", "kind = 'alerts'", order_by="id")
            fields = [(r, json.loads(r["payload"])["fields"]) for r in rows]
            return [r for r, f in fields if f.get("title", "").startswith(title)]

        try:
            (row,) = await until(alerted, CHECK_SECONDS + 15, title)
        except AssertionError as missed:  # say what serve did post, and what it logged
            rows = store._rows("outbox", "kind = 'alerts'", order_by="id")
            posted = [json.loads(r["payload"])["fields"].get("title") for r in rows]
            serve.send_signal(signal.SIGTERM)
            said = (await asyncio.wait_for(serve.stderr.read(), 20)).decode()
            said = said[-3000:]
            raise AssertionError(f"{missed}; posted: {posted}; serve said:\n{said}") from None
        assert row["created_at"] - looped[0] <= CHECK_SECONDS + 10, (row, looped)
        assert serve.returncode is None  # the same serve all along: never restarted
        await asyncio.sleep(CHECK_SECONDS * 2)  # more rounds and failures: still one alert
        assert len(alerted()) == 1
    finally:
        await stop_cli(serve)
        bot.close()
        for image in docker_client.api.images(name=f"shipbot/{name}"):
            for tag in image.get("RepoTags") or []:
                with contextlib.suppress(Exception):
                    docker_client.api.remove_image(tag)
