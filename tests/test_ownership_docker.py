"""Two control planes (two SHIPBOT_HOMEs: two stores, two ids) on the one local swarm, through
the real dispatcher and engine. Each deploys its own app and makes its own database; neither
lists, alerts on, drifts on or reports certificates of the other's services, and neither's
changes or removals touch the other's service, database or volume."""

from __future__ import annotations

import asyncio
import contextlib
import json
import shutil
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import docker.errors
import pytest

from commands.dispatch import Dispatcher
from commands.replies import Table
from commands.watching import watchers
from core.deploy.drift import detect
from core.names import LABEL_PLANE
from core.watch.certs import EdgeReader
from tests.chat import failure, remove_apps, remove_volumes, result, say, table
from tests.test_serve import free_port
from tests.test_slack import until

pytestmark = pytest.mark.docker

ADMIN = "console:alice"
EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "hello"


def home_of(root: Path, side: str, tag: str) -> Path:
    home = root / f"home-{side}"
    home.mkdir()
    (home / "shipbot.yml").write_text(
        "admins: [console:alice]\n"
        f"notify:\n  - {{platform: slack, channel: C{side.upper()}, kinds: [alerts]}}\n"
        # an edge of its own that does not run: nobody's Traefik is changed, probes fail fast
        f"edge: {{service: zo{tag}{side}-edge, https_port: {free_port()}}}\n"
        'data: {images: {redis: "shipbot-test/redis:{version}"}}\n'
        "alerts: {check_seconds: 1, crash_restarts: 2, crash_window_seconds: 600,"
        " recover_seconds: 5, usage_image: null, guard_seconds: 0}\n"
    )
    return home


def app_folder(root: Path, name: str) -> Path:
    folder = root / name
    shutil.copytree(EXAMPLE, folder)
    yml = folder / "app.yml"
    text = yml.read_text().replace("name: hello", f"name: {name}")
    text = text.replace("replicas: 2", "replicas: 1")
    # five helpers share two cores here: a probe may be slow, which is no crash
    text = text.replace("timeout: 2s, retries: 3", "timeout: 5s, retries: 5")
    yml.write_text(text + f"domains: [{name}.test]\nhttps: false\n")
    return folder


@pytest.fixture
def planes(docker_client, tmp_path: Path) -> Iterator[dict]:
    tag = uuid.uuid4().hex[:6]
    apps = {side: f"zo{tag}{side}" for side in "ab"}
    dbs = {side: f"zd{tag}{side}" for side in "ab"}
    bots = {side: Dispatcher.open(home_of(tmp_path, side, tag)) for side in "ab"}
    try:
        yield {"bots": bots, "apps": apps, "dbs": dbs, "root": tmp_path}
    finally:
        for bot in bots.values():
            bot.close()
        remove_apps(docker_client, list(apps.values()), 40.0)
        for name in dbs.values():
            with contextlib.suppress(docker.errors.NotFound):
                docker_client.api.remove_service(f"db-{name}")
        remove_volumes(docker_client, [f"db-{name}-data" for name in dbs.values()], timeout=30)
        networks = [f"shipbot-{a}-production" for a in apps.values()]
        networks += [f"shipbot-db-{d}" for d in dbs.values()]
        for network in networks:
            with contextlib.suppress(docker.errors.APIError):
                docker_client.api.remove_network(network)


def labels(found: dict) -> dict:
    return (found.get("Spec") or {}).get("Labels") or found.get("Labels") or {}


def alert_titles(bot: Dispatcher) -> list[str]:
    rows = bot.engine.store._rows("outbox", "kind = 'alerts'", order_by="id")
    return [json.loads(r["payload"])["fields"].get("title") or "" for r in rows]


def kill_its_task(client, service: str, killed: set[str]) -> bool:
    """Kill the container of ``service``'s running task (one not killed yet), as a crash."""
    for task in client.api.tasks(filters={"service": service, "desired-state": "running"}):
        container = (task["Status"].get("ContainerStatus") or {}).get("ContainerID")
        if task["Status"]["State"] == "running" and container and container not in killed:
            with contextlib.suppress(docker.errors.APIError):  # it stopped meanwhile
                client.api.kill(container)
                killed.add(container)
                return True
    return False


async def test_two_control_planes_on_one_swarm_see_and_touch_only_their_own(planes, docker_client):
    bots, apps, dbs = planes["bots"], planes["apps"], planes["dbs"]
    a, b = bots["a"], bots["b"]
    ids = {side: bot.engine.plane.id for side, bot in bots.items()}
    assert ids["a"] != ids["b"]
    for side, bot in bots.items():
        name = apps[side]
        folder = app_folder(planes["root"], name)
        assert result(await say(bot, f"apps add {name} --path {folder}", ADMIN)).ok
        assert result(await say(bot, f"domain grant {name} {name}.test", ADMIN)).ok
        done = result(await say(bot, f"deploy {name}", ADMIN))
        assert done.ok, done
        made = result(await say(bot, f"db create redis {dbs[side]}", ADMIN))
        assert made.ok, made

    # what each made carries its id: service, network, database service, volume, network
    for side in "ab":
        service = docker_client.api.inspect_service(f"{apps[side]}-production")
        network = docker_client.api.inspect_network(f"shipbot-{apps[side]}-production")
        database = docker_client.api.inspect_service(f"db-{dbs[side]}")
        volume = docker_client.api.inspect_volume(f"db-{dbs[side]}-data")
        db_network = docker_client.api.inspect_network(f"shipbot-db-{dbs[side]}")
        for found in (service, network, database, volume, db_network):
            assert labels(found)[LABEL_PLANE] == ids[side], found

    # status lists its own app only; the swarm's other services are not its
    for side, bot in bots.items():
        rows = table(await say(bot, "status", ADMIN)).rows
        assert [row[0] for row in rows] == [apps[side]], rows
        listed = table(await say(bot, "db list", ADMIN)).rows
        assert [row[0] for row in listed] == [dbs[side]], listed

    # no drift on the other's service (an orphan, were it counted)
    for bot in bots.values():
        assert await detect(bot.engine.plane) == []

    # certificates: each reads its own routed domain only
    for side, bot in bots.items():
        facts = await EdgeReader.of(bot.engine.plane).facts()
        assert [(f.app, f.domain) for f in facts] == [(apps[side], f"{apps[side]}.test")]

    # neither changes the other's: b registers an app of a's name, and still may not
    same = planes["root"] / "b-same"
    shutil.copytree(EXAMPLE, same)
    (same / "app.yml").write_text(f"name: {apps['a']}\nbuild: .\nport: 8080\n")
    assert result(await say(b, f"apps add {apps['a']} --path {same}", ADMIN)).ok
    version = docker_client.api.inspect_service(f"{apps['a']}-production")["Version"]["Index"]
    for verb in ("scale", "restart"):
        args = " 2" if verb == "scale" else ""
        failure(await say(b, f"{verb} {apps['a']}{args}", ADMIN))
    refused = failure(await say(b, f"db create redis {dbs['a']}", ADMIN))
    assert "another control plane's" in refused.message, refused
    after = docker_client.api.inspect_service(f"{apps['a']}-production")["Version"]["Index"]
    assert after == version

    # alerts: a's app crash-loops (its task killed twice); only a's watcher says so
    watches = {
        side: watchers(bot.engine.plane, bot.config, bot.notifier)[0] for side, bot in bots.items()
    }
    for watch in watches.values():
        await watch.check()
    killed: set[str] = set()
    crash = f"🔁 {apps['a']} (production) on local is crash-looping"
    deadline = time.monotonic() + 120
    while not any(t.startswith(crash) for t in alert_titles(a)):
        assert time.monotonic() < deadline, alert_titles(a)
        if len(killed) < 3:
            kill_its_task(docker_client, f"{apps['a']}-production", killed)
        for watch in watches.values():
            await watch.check()
        await asyncio.sleep(0.3)
    assert [t for t in alert_titles(b) if apps["a"] in t] == []
    assert [t for t in alert_titles(a) if apps["b"] in t] == []

    # b removes its database with its data: a's database, volume and network stay
    gone = result(await say(b, f'db remove {dbs["b"]} --delete-data --break-glass "test"', ADMIN))
    assert gone.ok, gone

    def b_volume_gone() -> bool:
        with contextlib.suppress(docker.errors.NotFound):
            docker_client.api.inspect_volume(f"db-{dbs['b']}-data")
            return False
        return True

    await until(b_volume_gone, timeout=30)
    assert docker_client.api.inspect_service(f"db-{dbs['a']}")
    assert docker_client.api.inspect_volume(f"db-{dbs['a']}-data")
    shown = [r for r in await say(a, f"db status {dbs['a']}", ADMIN) if isinstance(r, Table)]
    status = shown[0].rows
    assert ("volume", f"db-{dbs['a']}-data (present)") in status, status
