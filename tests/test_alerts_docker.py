"""Alerts and the guard on the real engine.

- A release that serves, goes healthy, then exits 3 after 30 s is rolled back by the guard,
  with ONE alert carrying the exit code and the log tail (not one per restart).
- ``shipbot serve`` killed (SIGKILL) while an alert waits in the outbox, then started
  again: the alert reaches the channel exactly once.
- The event stream dropped again and again while a service is OOM-killed over and over:
  every event the engine kept is handled once, and one OOM alert is posted.
- The disk and memory probe measures this node through the engine.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import signal
import time
import uuid
from pathlib import Path

import docker.errors
import pytest

from commands.dispatch import Dispatcher
from commands.watching import watchers
from core.config import AlertsConfig
from core.store import Store
from core.swarm.docker_api import DockerSwarm
from core.swarm.watch_api import EVENT_FILTERS, PROBE_PREFIX, PROBE_SCRIPT, since_arg
from core.watch import alerts
from core.watch.alert_rules import Post
from core.watch.alerts import AlertWatch
from tests.chat import remove_apps, result, say
from tests.fake_slack import FakeSlack
from tests.test_serve import free_port, spawn_cli, stop_cli
from tests.test_slack import SECRET, until

pytestmark = pytest.mark.docker

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "hello"
# serves, is healthy, and 30 s later gives up with exit code 3 (Swarm restarts it: a loop)
CRASHES_AFTER_30S = (
    'CMD ["sh", "-c", "echo serving on 8080; httpd -p 8080 -h /www; sleep 30; '
    'echo giving up after 30s; exit 3"]'
)


def za_name() -> str:
    return f"za{uuid.uuid4().hex[:6]}"


@pytest.fixture
def app(tmp_path: Path) -> tuple[str, Path]:
    name = za_name()
    folder = tmp_path / name
    shutil.copytree(EXAMPLE, folder)
    yml = folder / "app.yml"
    text = yml.read_text().replace("name: hello", f"name: {name}")
    # five helpers share two cores here: a probe may be slow, which is no crash
    text = text.replace("timeout: 2s, retries: 3", "timeout: 5s, retries: 5")
    yml.write_text(text)
    return name, folder


def home_with(tmp_path: Path, config: str) -> Path:
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    (home / "shipbot.yml").write_text(config)
    return home


async def rounds_later(store: Store, seconds: float) -> None:
    """Until the watcher's rounds (one a second here, each noted in the store, also by a
    `serve` in another process) have gone on for ``seconds`` more, with a deadline."""
    first = await until(lambda: store.last_guard_round("local"), timeout=30)
    await until(
        lambda: store.last_guard_round("local") >= first + seconds, timeout=30 + 2 * seconds
    )


def outbox(store: Store, kind: str) -> list[dict]:
    rows = store._rows("outbox", "kind = ?", [kind], order_by="id")
    return [{**json.loads(r["payload"])["fields"], "channel": r["channel"]} for r in rows]


async def test_guard_rolls_back_a_release_that_crash_loops_30s_after_going_healthy(
    docker_client, tmp_path, app, made_apps
):
    name, folder = app
    made_apps.append(name)
    home = home_with(
        tmp_path,
        "admins: [console:alice]\n"
        "notify:\n"
        f"  - {{platform: slack, channel: CALERTS, kinds: [alerts], apps: [{name}]}}\n"
        f"  - {{platform: slack, channel: CDEPLOYS, kinds: [deploys], apps: [{name}]}}\n"
        "alerts: {guard_seconds: 150, crash_restarts: 2, check_seconds: 1, recover_seconds: 5,"
        " usage_image: null}\n",
    )
    bot = Dispatcher.open(home)
    tasks = []
    try:
        assert result(await say(bot, f"apps add {name} --path {folder}")).ok
        assert result(await say(bot, f"deploy {name}")).ok
        tasks = [
            asyncio.create_task(w.run())
            for w in watchers(bot.engine.plane, bot.config, bot.notifier)
        ]
        store = bot.engine.store
        # `shipbot serve` is watching before the deploy: its reply may promise the guard
        await until(lambda: store.last_guard_round("local"), timeout=30)
        dockerfile = folder / "Dockerfile"
        dockerfile.write_text(
            dockerfile.read_text().replace(
                'CMD ["httpd", "-f", "-v", "-p", "8080", "-h", "/www"]', CRASHES_AFTER_30S
            )
        )
        second = result(await say(bot, f"deploy {name}"))
        assert second.ok, second  # healthy at first: the deploy itself succeeds
        assert second.details[-1].startswith("🛡️ guarded for 2.5m")
        went_live = time.monotonic()

        def ended() -> dict | None:
            guard = store.guards(name, "production")[0]
            return guard if guard["status"] not in ("watching", "rolling_back") else None

        guard = await until(ended, timeout=150)
        assert guard["status"] == "rolled_back", guard
        assert time.monotonic() - went_live >= 29  # it was healthy until its 30 s were up
        releases = [(r.number, r.status) for r in store.releases(name, "production")]
        assert releases == [(2, "failed"), (1, "live")]
        spec = docker_client.api.inspect_service(f"{name}-production")["Spec"]
        assert spec["TaskTemplate"]["ContainerSpec"]["Image"] == f"shipbot/{name}:1"
        await rounds_later(store, 8)  # more restarts and checks: still one alert
        problems = [a for a in outbox(store, "alerts") if not a["ok"]]
        assert len(problems) == 1, problems
        alert = problems[0]
        assert alert["channel"] == "CALERTS"
        assert alert["title"] == (
            f"🔁 {name} (production) on local crash-looped after its deploy (exit code 3)"
        )
        assert alert["fields"]["exit code"] == "3"
        assert alert["fields"]["server"] == "local" and alert["fields"]["env"] == "production"
        assert alert["log_tail"][-1] == "giving up after 30s", alert["log_tail"]
        assert "serving on 8080" in alert["log_tail"]
        told = [a for a in outbox(store, "deploys") if "guard" in a["title"]]
        title = f"🛡️ the guard rolled {name} back on production from release 2 to release 1"
        assert [(t["channel"], t["title"]) for t in told] == [("CDEPLOYS", title)]
        assert told[0]["log_tail"][-1] == "giving up after 30s"
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        bot.close()
        await asyncio.to_thread(remove_apps, docker_client, [name], 40.0)
        # the same build elsewhere shares the image id, held by others' containers: untag ours
        for image in docker_client.api.images(name=f"shipbot/{name}"):
            for tag in image.get("RepoTags") or []:
                if tag.startswith(f"shipbot/{name}:"):
                    with contextlib.suppress(docker.errors.APIError):
                        docker_client.api.remove_image(tag)


def below_replicas_service(client, name: str, plane_id: str) -> None:
    """An app service of control plane ``plane_id`` that can never run (no node has the
    label): 0/1 replicas."""
    client.api.create_service(
        {
            "ContainerSpec": {"Image": "busybox:latest", "Command": ["sleep", "600"]},
            "Placement": {"Constraints": ["node.labels.za-nowhere==1"]},
        },
        name=f"{name}-production",
        labels={
            "shipbot.app": name,
            "shipbot.env": "production",
            "shipbot.managed": "true",
            "shipbot.plane": plane_id,
        },
    )


async def test_alert_pending_when_the_bot_is_killed_is_delivered_once(
    docker_client, tmp_path, made_apps
):
    name = za_name()
    made_apps.append(name)
    home = home_with(
        tmp_path,
        "admins: [slack:UADMIN]\n"
        f"notify:\n  - {{platform: slack, channel: CALERTS, kinds: [alerts], apps: [{name}]}}\n"
        "alerts: {below_replicas_seconds: 0, check_seconds: 1, usage_image: null}\n",
    )
    store = Store(home / "shipbot.db")
    below_replicas_service(docker_client, name, store.plane_id())
    fake = await FakeSlack().start()
    fake.closed.add("CALERTS")  # the channel refuses posts: the alert stays pending
    env = {
        **os.environ,
        "SHIPBOT_HOME": str(home),
        "SLACK_BOT_TOKEN": "xoxb-test",
        "SLACK_SIGNING_SECRET": SECRET,
        "SLACK_API_URL": fake.base_url,
        "SHIPBOT_HTTP_HOST": "127.0.0.1",
        "SHIPBOT_HTTP_PORT": str(free_port()),
    }
    title = f"📉 {name} (production) on local runs 0 of 1 replicas"
    first = await spawn_cli(env)
    try:

        def tried() -> list[dict]:
            return [
                r
                for r in store._rows("outbox", "kind = 'alerts'")
                # (the bot's "is up" notice goes to the alerts channels too: a text, no title)
                if r["attempts"] >= 1
                and title in json.loads(r["payload"])["fields"].get("title", "")
            ]

        await until(tried, timeout=60)
    finally:
        first.send_signal(signal.SIGKILL)  # no clean stop: as a crash or an OOM kill would
        await first.wait()
    assert not [
        c
        for c in fake.of("chat.postMessage")
        if c.args["channel"] == "CALERTS" and c.answer.get("ok")
    ]
    fake.closed.discard("CALERTS")
    second = await spawn_cli(env)
    try:
        # (its service is this control plane's but has no release: drift says so apart)
        def delivered() -> list:
            return [
                c
                for c in fake.of("chat.postMessage")
                if c.args["channel"] == "CALERTS" and c.answer.get("ok") and title in c.args["text"]
            ]

        await until(delivered, timeout=60)
        await rounds_later(store, 6)  # a few more check rounds (1 s each) and deliveries
        posted = [c.args["text"] for c in delivered()]
        assert len(posted) == 1, posted
        rows = [
            r
            for r in store._rows("outbox", "kind = 'alerts'")
            if title in json.loads(r["payload"])["fields"].get("title", "")
        ]
        assert [r["status"] for r in rows] == ["sent"]
    finally:
        await stop_cli(second)
        store.close()
        await fake.stop()


def oom_service(client, name: str) -> None:
    """An app service whose task fills 64 MB into a 16 MB limit: OOM-killed, restarted."""
    client.api.create_service(
        {
            "ContainerSpec": {
                "Image": "busybox:latest",
                "Command": ["sh", "-c", 'sleep 2; x=$(head -c 64000000 /dev/zero | tr "\\0" a)'],
            },
            "Resources": {"Limits": {"MemoryBytes": 16 * 1024 * 1024}},
            "RestartPolicy": {"Condition": "any", "Delay": 1_000_000_000},
        },
        name=f"{name}-production",
        labels={"shipbot.app": name, "shipbot.env": "production", "shipbot.managed": "true"},
    )


async def test_event_stream_dropped_and_reopened_doubles_and_loses_nothing(
    docker_client, tmp_path, made_apps, monkeypatch
):
    monkeypatch.setattr(alerts, "RECONNECT_FIRST", 0.5)
    monkeypatch.setattr(alerts, "RECONNECT_MAX", 0.5)
    name = za_name()
    made_apps.append(name)
    store = Store(tmp_path / "shipbot.db")
    swarm = DockerSwarm.connect()
    posts: list[Post] = []
    config = AlertsConfig(crash_restarts=1000, check_seconds=1, usage_image=None)

    async def client():
        return swarm

    watch = AlertWatch("local", client, store, config, posts.append)
    mine = f"{name}-production"
    # Both streams cover one span of this test's own service. They start at one instant:
    # the watcher's cursor and the witness's `since`. They end at one instant: the last
    # event the watcher handled, which the witness has passed once it has seen a later one.
    # The witness is a second connection, never dropped, filtered by the engine to this
    # service's containers (a replay would not do: the engine keeps only its last 256
    # events of any kind, seconds on a busy machine; and an unfiltered live stream of every
    # helper's containers is not the same span of the same events).
    started_ns = time.time_ns()
    store.advance_cursor("local", started_ns, 0)
    own_filters = {**EVENT_FILTERS, "label": [f"{alerts.SERVICE_LABEL}={mine}"]}
    witness = docker_client.api.events(
        since=since_arg(started_ns + 1), filters=own_filters, decode=True
    )
    seen: list[dict] = []

    def read_witness() -> None:
        for event in witness:
            seen.append(event)

    def key(e: dict) -> str:
        return (
            f"{e['timeNano']}/{e.get('Type')}/{e.get('Action')}/{(e.get('Actor') or {}).get('ID')}"
        )

    def handled_own() -> list[str]:
        containers = {(e.get("Actor") or {}).get("ID") for e in list(seen)}
        return [k for k in watch.handled if k.split("/")[3] in containers]

    reader = asyncio.create_task(asyncio.to_thread(read_witness))
    runner = asyncio.create_task(watch.run())
    try:
        oom_service(docker_client, name)
        for _ in range(5):  # drop the connection after each new death of the service's task
            count = len(handled_own())
            await until(lambda count=count: len(handled_own()) > count, timeout=60)
            before, deadline = watch.drops, time.monotonic() + 20
            while watch.drops == before:  # (the stream may be between connections)
                watch.drop()
                await asyncio.sleep(0.2)
                assert time.monotonic() < deadline
        await until(lambda: [p for p in posts if "OOM" in p.outcome.title], timeout=60)
    finally:
        runner.cancel()
        await asyncio.gather(runner, return_exceptions=True)
        ended_ns = store.alert_cursor("local")[0]  # the last event the watcher handled
        try:  # the task dies every few seconds: the witness passes that instant soon
            await until(lambda: any(e["timeNano"] > ended_ns for e in list(seen)), timeout=60)
        finally:
            witness.close()
            await asyncio.gather(reader, return_exceptions=True)
            with contextlib.suppress(docker.errors.APIError):
                docker_client.api.remove_service(mine)
    ooms = [p for p in posts if "OOM" in p.outcome.title and p.app == name]
    assert watch.drops >= 5
    kept = [key(e) for e in seen if e["timeNano"] <= ended_ns]
    assert len(watch.handled) == len(set(watch.handled)), "an event was handled twice"
    # (a round the cancelled watcher's reader thread had begun may still land: same span)
    handled = [k for k in handled_own() if int(k.split("/")[0]) <= ended_ns]
    assert handled == kept  # none lost across the drops, in the engine's order
    own = [k for k in kept if "/oom/" in k]
    assert len(own) >= 2, kept  # it was OOM-killed more than once while the stream dropped
    assert [p.outcome.title for p in ooms] == [
        f"💥 {name} (production) on local: a task was killed for running out of memory (OOM)"
    ]
    assert mine in [a["subject"] for a in store.open_alerts()]
    swarm.close()
    store.close()


def probe_containers(docker_client) -> set[str]:
    return {c["Id"] for c in docker_client.api.containers(all=True, filters={"name": PROBE_PREFIX})}


def orphan_probe_tasks(docker_client) -> set[str]:
    """Probe tasks whose service is gone (a removed job service leaves them: moby#42789)."""
    services = {s["ID"] for s in docker_client.api.services()}
    return {
        t["ID"]
        for t in docker_client.api.tasks()
        if t["ServiceID"] not in services
        and t["Spec"].get("ContainerSpec", {}).get("Command", [])[-1:] == [PROBE_SCRIPT]
    }


def test_probe_measures_this_node_through_the_engine(docker_client):
    containers, orphans = probe_containers(docker_client), orphan_probe_tasks(docker_client)
    swarm = DockerSwarm.connect()
    try:
        usage = swarm.node_usage("busybox:latest")
    finally:
        swarm.close()
    (node,) = docker_client.api.nodes()
    assert set(usage) == {node["ID"]}
    found = usage[node["ID"]]
    assert 0 < found["disk_percent"] < 100 and 0 < found["memory_percent"] < 100
    total_kb = docker_client.info()["MemTotal"] / 1024
    assert abs(found["memory_total_kb"] - total_kb) / total_kb < 0.05
    left = docker_client.api.services(filters={"name": PROBE_PREFIX})
    assert left == []  # the probe removed its service
    # and with it its task and the task's exited container, on every node: as a global job,
    # each round left both behind for good (a container per node per round)
    deadline = time.monotonic() + 30
    while left := (
        (orphan_probe_tasks(docker_client) - orphans)
        | (probe_containers(docker_client) - containers)
    ):  # the engine removes them shortly after the service
        assert time.monotonic() < deadline, f"left behind: {left}"
        time.sleep(0.5)
