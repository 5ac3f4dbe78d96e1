"""The control plane apart on real parts: shipbot with no engine beside it (``local:
false``, ``DOCKER_HOST`` a dead socket) bootstraps one node over SSH (tests/multinode.py),
builds and deploys there, and reads status, drift, alerts and leftovers from it alone."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from commands.dispatch import ChatRequest, Dispatcher
from commands.watching import watchers
from core.watch.sweep import sweep_all
from tests.chat import failure, result, say, steps, table
from tests.multinode import Cluster
from tests.multinode_fixtures import DOCKERFILE, EDGE_YML, TRAEFIK_IMAGE, plane, ssh_cluster

pytestmark = pytest.mark.docker

PREFIX = "zap"
SUBNET = "192.168.151.0/24"
APP_YML = """\
name: {name}
build: .
port: 8080
https: false
healthcheck:
  cmd: ["wget", "-qO-", "http://127.0.0.1:8080/"]
  interval: 1s
  timeout: 2s
stop_grace_period: 1s
environments:
  production: {{server: zap-1, replicas: 1}}
  staging: {{replicas: 1}}
"""


@pytest.fixture(scope="module")
def node(docker_client) -> Iterator[tuple[Cluster, str]]:
    with ssh_cluster(PREFIX, SUBNET, 1, ["busybox:latest", TRAEFIK_IMAGE]) as found:
        yield found


@pytest.fixture
def bot(node, tmp_path, monkeypatch) -> Iterator[Dispatcher]:
    monkeypatch.setenv("DOCKER_HOST", "unix:///nonexistent/docker.sock")
    settings = "admins: [console:alice]\nlocal: false\nserver_apps: {zap-1: ['zap*']}\n"
    with plane(tmp_path / "home", settings + EDGE_YML) as dispatcher:
        yield dispatcher


async def test_apart_bootstraps_deploys_and_watches_one_ssh_server(
    bot, node, tmp_path, monkeypatch
):
    up, private = node
    plane = bot.engine.plane
    assert not plane.servers.has_local
    stored = await bot.run(
        ChatRequest("console", "console:alice", "console", "ssh-key import zap", private)
    )
    assert result(stored).ok, stored
    added = await say(bot, f"server add zap-1 ssh://root@{up.nodes[0].ip} --key zap")
    assert result(added).ok, added

    name = f"zap{uuid.uuid4().hex[:6]}"
    folder = tmp_path / name
    folder.mkdir()
    (folder / "Dockerfile").write_text(DOCKERFILE)
    (folder / "app.yml").write_text(APP_YML.format(name=name))
    assert result(await say(bot, f"apps add {name} --path {folder}")).ok
    deployed = await say(bot, f"deploy {name}")
    assert result(deployed).ok, deployed
    assert not any("local" in s for s in steps(deployed)), steps(deployed)
    # staging names no server: refused, naming the one it may name, nothing changed
    refused = failure(await say(bot, f"deploy {name} --env staging")).message
    assert "no engine of its own" in refused and "known: zap-1" in refused, refused

    shown = table(await say(bot, "status"))
    assert [row[:4] for row in shown.rows] == [(name, "production", "1", "1/1 healthy")]
    # read from zap-1 alone (the node's Docker 20.10 reports the health check its own way,
    # a known difference of drift, not of running apart): nothing is unreachable
    assert {(d.server, d.kind) for d in await bot.engine.drift()} <= {("zap-1", "spec differs")}
    (watch,) = watchers(plane, bot.config, bot.notifier)
    assert watch.server == "zap-1"
    assert await watch.check() == []  # the app, its proxy: all well, nothing to say
    assert await sweep_all(plane, ["zap-1"]) == {"zap-1": []}
    # the service runs on the node, put there over SSH (asked through this host's engine)
    monkeypatch.undo()
    ran = up.nodes[0].sh("docker", "service", "inspect", f"{name}-production", check=False)
    assert ran.returncode == 0, ran.stderr
