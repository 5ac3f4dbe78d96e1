"""Remote servers on three real nodes (Docker-in-Docker with sshd, tests/multinode.py):
shipbot bootstraps them over SSH with Fabric into one swarm, builds an app on the manager,
spreads its image, places one replica per node and serves it through that swarm's Traefik;
an unreachable host and a changed host key are refused with nothing written."""

from __future__ import annotations

import asyncio
import http.client
import time
import uuid
from collections.abc import Iterator

import pytest

from commands.dispatch import ChatRequest, Dispatcher
from core.config import AlertsConfig
from core.watch.alert_rules import Post
from core.watch.alerts import AlertWatch
from tests.chat import failure, result, say, steps, table
from tests.multinode import BARE_IMAGE, Cluster
from tests.multinode_fixtures import EDGE_YML, TRAEFIK_IMAGE, plane, ssh_cluster

pytestmark = pytest.mark.docker

PREFIX = "zs"
SUBNET = "192.168.97.0/24"
DOCKERFILE = """\
FROM busybox
CMD hostname > /www/index.html && exec httpd -f -p 8080 -h /www
"""
APP_YML = """\
name: {name}
build: .
port: 8080
domains: [{name}.test]
https: false
healthcheck:
  cmd: ["wget", "-qO-", "http://127.0.0.1:8080/"]
  interval: 1s
  timeout: 2s
stop_grace_period: 1s
environments:
  production:
    server: zs-1
    replicas: 3
    placement: {{spread: node.id, max_per_node: 1}}
"""


@pytest.fixture(scope="module")
def nodes(docker_client) -> Iterator[tuple[Cluster, str]]:
    # what each server would pull from a registry: only the manager gets them
    with ssh_cluster(PREFIX, SUBNET, manager_images=["busybox:latest", TRAEFIK_IMAGE]) as found:
        yield found


@pytest.fixture(scope="module")
def bot(nodes, tmp_path_factory) -> Iterator[Dispatcher]:
    settings = (
        "admins: [console:alice]\n"
        "server_apps: {zs-1: ['zs*']}\n"
        "build: {server: local}\n"  # builds on this host's engine, never on zs-1's nodes
    )
    with plane(tmp_path_factory.mktemp("servers-home"), settings + EDGE_YML) as dispatcher:
        yield dispatcher


def get(address: str, host: str) -> tuple[int, str]:
    conn = http.client.HTTPConnection(address, 80, timeout=5)
    try:
        conn.request("GET", "/", headers={"Host": host})
        response = conn.getresponse()
        return response.status, response.read().decode().strip()
    finally:
        conn.close()


def node_of_tasks(manager, service: str) -> list[str]:
    ran = manager.sh(
        "docker", "service", "ps", service, "-f", "desired-state=running",
        "--format", "{{.Node}} {{.CurrentState}}",
    )  # fmt: skip
    return sorted(line.split()[0] for line in ran.stdout.splitlines() if "Running" in line)


async def test_bootstrap_swarm_then_deploy_across_nodes(bot, nodes, tmp_path):
    up, private = nodes
    started = time.monotonic()
    stored = await bot.run(
        ChatRequest("console", "console:alice", "console", "ssh-key import zs", private)
    )
    assert result(stored).ok and result(stored).details[0].startswith("ssh-ed25519 ")
    assert not any(private.splitlines()[1] in str(r) for r in stored)

    first = await say(
        bot, f"server add zs-1 ssh://root@{up.nodes[0].ip} --key zs --address 198.51.100.71"
    )
    assert result(first).ok, first
    said = steps(first)
    assert "public addresses for DNS: 198.51.100.71" in said
    assert "Docker is installed" in said
    assert f"swarm initialised, advertising {up.nodes[0].ip}" in said
    assert "overlay network ready" in said
    assert any(s.startswith("recorded zs-1: host key SHA256:") for s in said)
    for n in (2, 3):
        joined = await say(
            bot, f"server add zs-{n} ssh://root@{up.nodes[n - 1].ip} --key zs --join zs-1"
        )
        assert result(joined).ok, joined
        assert "joined swarm zs-1 as worker" in steps(joined)
    bootstrapped = time.monotonic() - started

    again = await say(bot, f"server add zs-2 ssh://root@{up.nodes[1].ip} --key zs --join zs-1")
    assert result(again).ok, again
    assert "already a node of swarm zs-1" in " ".join(steps(again))
    rerun = await say(bot, f"server add zs-1 ssh://root@{up.nodes[0].ip} --key zs")
    assert result(rerun).ok and any("already a swarm manager" in s for s in steps(rerun))

    check = await say(bot, "server check zs-1")
    tables = [r for r in check if hasattr(r, "rows")]
    assert [row[0] for row in tables[0].rows] == ["address", "host key", "docker", "swarm"]
    assert sorted(row[0] for row in tables[1].rows) == ["zs-node1", "zs-node2", "zs-node3"]
    assert all(row[1] == "Ready" for row in tables[1].rows)
    listed = table(await say(bot, "server list"))
    assert [(r[0], r[2], r[3], r[4]) for r in listed.rows] == [
        ("zs-1", "198.51.100.71", "zs-1", "manager"),
        ("zs-2", "none", "zs-1", "worker"),
        ("zs-3", "none", "zs-1", "worker"),
    ]

    name = f"zs{uuid.uuid4().hex[:6]}"
    folder = tmp_path / name
    (folder / "www").mkdir(parents=True)
    (folder / "Dockerfile").write_text(DOCKERFILE)
    (folder / "app.yml").write_text(APP_YML.format(name=name))
    assert result(await say(bot, f"apps add {name} --path {folder}")).ok
    assert result(await say(bot, f"domain grant {name} {name}.test")).ok
    deployed = await say(bot, f"deploy {name}")
    assert result(deployed).ok, deployed
    assert f"built on local: carrying shipbot/{name}:1 to zs-1" in steps(deployed)
    assert f"shipbot/{name}:1 is on zs-1" in steps(deployed)
    assert f"image shipbot/{name}:1 on zs-2: sent" in steps(deployed)
    assert f"image shipbot/{name}:1 on zs-3: sent" in steps(deployed)
    manager = up.nodes[0]
    assert node_of_tasks(manager, f"{name}-production") == ["zs-node1", "zs-node2", "zs-node3"]

    answers: set[str] = set()
    deadline = time.monotonic() + 30
    while len(answers) < 3 and time.monotonic() < deadline:
        try:
            status, body = get(manager.ip, f"{name}.test")
        except OSError:
            status, body = 0, ""
        if status == 200:
            answers.add(body)
        time.sleep(0.1)
    # each replica answers with its container's hostname: three containers on three nodes
    assert len(answers) == 3, answers

    # what follows a deploy acts where the app runs: zs-1's swarm, not this host's
    shown = [r for r in await say(bot, f"status {name}") if hasattr(r, "rows")][0]
    assert shown.rows[0][:4] == (name, "production", "1", "3/3 healthy")
    scaled = result(await say(bot, f"scale {name} 2"))
    assert scaled.ok and scaled.title == f"{name} (production) scaled to 2", scaled
    assert len(node_of_tasks(manager, f"{name}-production")) == 2
    print(
        f"bootstrap of 3 nodes: {bootstrapped:.1f}s; whole test: {time.monotonic() - started:.1f}s"
    )


async def test_a_node_whose_engine_stops_is_alerted_then_recovered(bot, nodes):
    """The alert watcher of swarm zs-1 (through its manager, over SSH) on a real worker whose
    dockerd stops, then starts again: one "down" post, then one recovery post."""
    up, _ = nodes
    worker = up.nodes[1]
    posts: list[Post] = []
    watch = AlertWatch(
        "zs-1",
        lambda: bot.engine.plane.servers.client("zs-1"),
        bot.engine.store,
        AlertsConfig(usage_image=None),
        posts.append,
    )

    async def until(text: str) -> Post:
        deadline = time.monotonic() + 90
        while True:
            await watch.check()
            found = [p for p in posts if text in p.outcome.title]
            if found:
                return found[0]
            assert time.monotonic() < deadline, [p.outcome.title for p in posts]
            await asyncio.sleep(1)

    await watch.check()
    assert not [p for p in posts if "zs-node2" in p.outcome.title]
    worker.sh("node-dockerd", "stop")
    try:
        down = await until("zs-node2")
        assert "of server zs-1 is down" in down.outcome.title
        assert down.outcome.fields["server"] == "zs-1"
    finally:
        worker.sh("node-dockerd", "start")
    back = await until("is ready again")
    assert "zs-node2" in back.outcome.title
    await watch.check()
    assert len([p for p in posts if "zs-node2" in p.outcome.title]) == 2  # once each


async def test_unreachable_host_and_changed_key_write_nothing(bot, nodes):
    up, _ = nodes
    store = bot.engine.store
    before = store.servers()
    gone = failure(await say(bot, "server add zs-9 ssh://root@192.168.97.99 --key zs"))
    assert "cannot reach server zs-9 at ssh://root@192.168.97.99 over SSH" in gone.message
    assert "nothing was changed" in gone.message
    assert store.server("zs-9") is None and store.servers() == before

    made = result(await say(bot, "ssh-key create stranger"))
    assert made.ok
    refused_key = failure(
        await say(bot, f"server add zs-8 ssh://root@{up.nodes[1].ip} --key stranger")
    )
    assert refused_key.message.startswith(
        f"server zs-8 (ssh://root@{up.nodes[1].ip}) refused shipbot's key: put its public line"
    )
    assert store.server("zs-8") is None and store.servers() == before

    node3 = up.nodes[2]
    node3.sh(
        "sh",
        "-c",
        "rm /etc/ssh/ssh_host_* && ssh-keygen -A >/dev/null && kill -HUP $(cat /run/sshd.pid)",
    )
    new = node3.sh("ssh-keygen", "-lf", "/etc/ssh/ssh_host_ed25519_key.pub").stdout.split()[1]
    time.sleep(0.5)  # sshd re-executes on SIGHUP
    refused = failure(await say(bot, "server check zs-3"))
    assert "the host key of server zs-3 changed" in refused.message
    assert f"`server trust zs-3 {new}`" in refused.message
    rerun = failure(await say(bot, f"server add zs-3 ssh://root@{node3.ip} --key zs --join zs-1"))
    assert "changed" in rerun.message
    assert store.servers() == before

    wrong = failure(
        await say(bot, "server trust zs-3 SHA256:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")
    )
    assert f"presents {new}" in wrong.message and store.servers() == before
    trusted = result(await say(bot, f"server trust zs-3 {new}"))
    assert trusted.ok, trusted
    assert result(
        await say(bot, "server add zs-3 ssh://root@" + node3.ip + " --key zs --join zs-1")
    ).ok

    refused_remove = failure(await say(bot, "server remove zs-1"))
    assert "zs-2, zs-3 joined zs-1's swarm" in refused_remove.message
    assert result(await say(bot, "server remove zs-3")).ok
    assert store.server("zs-3") is None


async def test_a_host_without_docker_gets_it_from_apt_and_joins_as_manager(bot, nodes):
    up, _ = nodes
    public = bot.engine.store.ssh_key("zs")["public"]
    bare = up.add(4, BARE_IMAGE, public)
    assert bare.sh("sh", "-c", "command -v docker", check=False).returncode != 0
    deadline = time.monotonic() + 30
    while bare.sh("test", "-f", "/run/sshd.pid", check=False).returncode != 0:
        assert time.monotonic() < deadline, "sshd never started on the bare node"
        time.sleep(0.2)
    started = time.monotonic()
    added = await say(
        bot, f"server add zs-4 ssh://root@{bare.ip} --key zs --join zs-1 --role manager"
    )
    assert result(added).ok, added
    assert steps(added)[1:3] == [
        "Docker is missing: installing docker.io with apt",
        "docker.io installed",
    ]
    assert steps(added)[3].startswith("the engine answers (Docker 20.10")
    assert "joined swarm zs-1 as manager" in steps(added)
    print(f"apt install + join: {time.monotonic() - started:.1f}s")
    # a manager of its own: shipbot reads the swarm through it too
    checked = [r for r in await say(bot, "server check zs-4") if hasattr(r, "rows")]
    assert checked[0].rows[3][1].startswith("zs-1: manager, node ")
    assert ("zs-node4", "Ready", "Active", "Reachable") in checked[1].rows
    again = await say(
        bot, f"server add zs-4 ssh://root@{bare.ip} --key zs --join zs-1 --role manager"
    )
    assert steps(again)[0] == "zs-4 was added before: running its bootstrap again"
    assert steps(again)[2] == "Docker is installed"
    assert "already a node of swarm zs-1" in " ".join(steps(again))
