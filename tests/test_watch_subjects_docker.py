"""What shipbot runs itself, watched like an app on the real engine: a managed database
whose process dies again and again (its container killed twice) and a proxy stopped
(scaled to none) each alert once, naming the server, and each gets its recovery post when
it is back. The proxy is this test's own (its own service name and ports, as shipbot.yml's
``edge:`` allows one per control plane): no other test's Traefik is touched.

Every name here starts with ``zq``; the test removes what it made.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import docker.errors
import pytest

from commands.dispatch import Dispatcher
from commands.watching import watchers
from core.store import Store
from tests.chat import remove_volumes, result, say
from tests.test_edge_docker import TRAEFIK_IMAGE, free_port
from tests.waiting import until

pytestmark = pytest.mark.docker

ADMIN = "console:alice"
SHIPBOT_YML = """\
admins: [console:alice]
data:
  images: {{redis: "shipbot-test/redis:{{version}}"}}
notify:
  - {{platform: console, channel: ops, kinds: [alerts]}}
alerts: {{check_seconds: 1, crash_restarts: 2, recover_seconds: 5, below_replicas_seconds: 10,
  usage_image: null, guard_seconds: 0}}
edge: {{image: {image}, service: {edge}, http_port: {http}, https_port: {https},
  acme: {{ca_server: 'https://127.0.0.1:9/dir', volume: {edge}-acme}}}}
"""


def titles(store: Store) -> list[str]:
    rows = store._rows("outbox", "kind = 'alerts'", order_by="id")
    return [json.loads(r["payload"])["fields"].get("title", "") for r in rows]


def running_container(client: Any, service: str) -> str | None:
    for task in client.api.tasks(filters={"service": service, "desired-state": "running"}):
        if task["Status"]["State"] == "running":
            return task["Status"]["ContainerStatus"]["ContainerID"]
    return None


def scale(client: Any, service: str, replicas: int) -> None:
    found = client.api.inspect_service(service)
    spec = found["Spec"]
    client.api.update_service(
        service,
        version=found["Version"]["Index"],
        task_template=spec["TaskTemplate"],
        name=spec["Name"],
        labels=spec.get("Labels"),
        mode={"Replicated": {"Replicas": replicas}},
        endpoint_spec=spec.get("EndpointSpec"),
        networks=spec["TaskTemplate"].get("Networks"),
        update_config=spec.get("UpdateConfig"),
        rollback_config=spec.get("RollbackConfig"),
    )


@pytest.fixture
def names(docker_client) -> Iterator[dict[str, str]]:
    tag = uuid.uuid4().hex[:6]
    made = {"db": f"zq{tag}", "edge": f"zq{tag}-edge"}
    yield made
    for service in (f"db-{made['db']}", made["edge"]):
        with contextlib.suppress(docker.errors.NotFound):
            docker_client.api.remove_service(service)
    remove_volumes(docker_client, [f"db-{made['db']}-data", f"{made['edge']}-acme"])
    for network in docker_client.api.networks(filters={"name": f"db-{made['db']}"}):
        with contextlib.suppress(docker.errors.APIError):
            docker_client.api.remove_network(network["Id"])


async def test_a_crash_looping_database_and_a_stopped_proxy_alert_once_and_recover(
    docker_client, tmp_path: Path, names
):
    home = tmp_path / "home"
    home.mkdir()
    (home / "shipbot.yml").write_text(
        SHIPBOT_YML.format(
            image=TRAEFIK_IMAGE, edge=names["edge"], http=free_port(), https=free_port()
        )
    )
    bot = Dispatcher.open(home)
    store, db, edge = bot.engine.store, names["db"], names["edge"]
    tasks: list[asyncio.Task[None]] = []
    try:
        made = result(await say(bot, f"db create redis {db} --version 7", ADMIN))
        assert made.ok, made
        assert result(await say(bot, "proxy setup", ADMIN)).ok
        await until(lambda: running_container(docker_client, f"db-{db}"), 60, "the database up")
        tasks = [
            asyncio.create_task(w.run())
            for w in watchers(bot.engine.plane, bot.config, bot.notifier)
        ]
        await until(lambda: store.last_guard_round("local"), 30, "the watcher's first round")

        # the database's process dies twice in a row (as a crash would): one alert
        killed: set[str] = set()
        for _ in range(2):
            container = await until(
                lambda: (c := running_container(docker_client, f"db-{db}")) not in killed and c,
                60,
                "a running database container",
            )
            docker_client.api.kill(container)
            killed.add(container)
        crash = f"🔁 database {db} (redis) on local is crash-looping: 2 tasks failed"
        await until(lambda: any(t.startswith(crash) for t in titles(store)), 60, crash)
        recovered = f"✅ database {db} (redis) on local recovered"
        await until(lambda: any(t.startswith(recovered) for t in titles(store)), 60, recovered)

        # the proxy stopped (scaled to none), then started again
        await asyncio.to_thread(scale, docker_client, edge, 0)
        stopped = "📉 the proxy (edge) on local runs 0 of 1 replicas"
        await until(lambda: any(t.startswith(stopped) for t in titles(store)), 60, stopped)
        await asyncio.to_thread(scale, docker_client, edge, 1)
        back = "✅ the proxy (edge) on local is back at 1/1 replicas; the alert is closed"
        await until(lambda: back in titles(store), 60, back)
        await asyncio.sleep(3)  # a few more rounds (one a second): nothing more is posted
        said = [t for t in titles(store) if db in t or "the proxy" in t]
        assert [t.split(":")[0].split(",")[0] for t in said] == [
            f"🔁 database {db} (redis) on local is crash-looping",
            f"✅ database {db} (redis) on local recovered",
            "📉 the proxy (edge) on local runs 0 of 1 replicas",
            "✅ the proxy (edge) on local is back at 1/1 replicas; the alert is closed",
        ]
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        bot.close()
