"""``serve`` watching a remote server keeps its SSH sessions under sshd's MaxSessions
(issue 23): a node with sshd and its own engine (tests/multinode.py) runs an app that
crash-loops (die events, check rounds that read its tasks and its log tail), and serve
watches it for several short check intervals. Inside the node, the sessions of each SSH
connection (its ``docker system dial-stdio`` processes) are counted every 0.1 s: none ever
has more than ``SESSIONS``, and sshd, logging to a file here, never says "no more
sessions".

docker-py kept one pool per request URL, each with idle sessions of its own: this test saw
10 on one connection and 58 refusals in sshd's log before that was fixed (5 at most, and
none, after). A connection the host ends is made again by the next request (before, that
request failed with "Socket is closed", told as the engine's fault).

Every name here starts with ``zss``; the node is removed at the end.
"""

from __future__ import annotations

import asyncio
import os
import time
import uuid
from collections.abc import Iterator

import pytest

from core.servers import docker_ssh, keys, ssh
from core.servers.docker_ssh import SESSIONS
from core.servers.urls import parse_url
from core.swarm.docker_api import MINIMUM_API
from tests.multinode import Node, docker
from tests.multinode_fixtures import (
    TRAEFIK_IMAGE,
    add_server,
    crash_looping,
    deploy_new,
    plane,
    ssh_cluster,
)
from tests.test_serve import spawn_cli, stop_cli
from tests.waiting import until

pytestmark = pytest.mark.docker

PREFIX = "zss"
SUBNET = "192.168.207.0/24"
ADMIN = "console:alice"
CHECK_SECONDS = 1
WATCHED_SECONDS = 20  # the check intervals serve is watched for
SSHD_LOG = "/var/log/zss-sshd.log"
COUNTS = "/run/zss-sessions"
APP_YML = (
    "{{name: {name}, build: ., port: 8080, https: false, stop_grace_period: 1s, "
    "environments: {{production: {{server: zss-1, replicas: 1}}}}}}\n"
)
# the most dial-stdio processes under any one sshd connection, every 0.1 s
COUNTER = (
    'while :; do ps -eo ppid=,args= | awk \'$2 == "docker" && $4 == "dial-stdio" '
    "{n[$1]++} END {m = 0; for (p in n) if (n[p] > m) m = n[p]; print m}' >> "
    f"{COUNTS}; sleep 0.1; done"
)


def sshd_logging(node: Node) -> None:
    """sshd started again with its log in ``SSHD_LOG`` (the node's has no syslog)."""
    node.sh(
        "sh", "-c",
        "kill $(cat /run/sshd.pid); while [ -e /run/sshd.pid ]; do sleep 0.1; done; "
        f"/usr/sbin/sshd -E {SSHD_LOG}",
    )  # fmt: skip


@pytest.fixture
def node(docker_client) -> Iterator[tuple[Node, str]]:
    with ssh_cluster(PREFIX, SUBNET, 1, ["busybox:latest", TRAEFIK_IMAGE]) as (up, private):
        sshd_logging(up.nodes[0])
        yield up.nodes[0], private


def most(node: Node) -> int:
    counted = node.sh("cat", COUNTS, check=False).stdout.split()
    return max((int(n) for n in counted), default=0)


async def test_serve_keeps_each_connections_sessions_under_sshds_limit(
    node, tmp_path, docker_client, made_apps
):
    server, private = node
    name = f"zss{uuid.uuid4().hex[:6]}"
    made_apps.append(name)
    home = tmp_path / "home"
    shipbot_yml = (
        f"admins: [{ADMIN}]\n"
        "server_apps: {zss-1: ['zss*']}\n"
        "notify:\n  - {platform: console, channel: ops, kinds: [alerts]}\n"
        f"alerts: {{check_seconds: {CHECK_SECONDS}, crash_restarts: 2, guard_seconds: 0,"
        " usage_image: busybox:latest}\n"
        f"edge: {{image: {TRAEFIK_IMAGE}, "
        "acme: {ca_server: 'https://127.0.0.1:9/dir', volume: shipbot-edge-acme}}\n"
    )
    with plane(home, shipbot_yml) as bot:
        await add_server(bot, "zss-1", server, private, ADMIN)
        files = {"Dockerfile": crash_looping(3), "app.yml": APP_YML.format(name=name)}
        await deploy_new(bot, tmp_path / name, files, ADMIN)
        store = bot.engine.store

        docker("exec", "-d", server.name, "sh", "-c", COUNTER)
        serve = await spawn_cli({**os.environ, "SHIPBOT_HOME": str(home)})
        try:
            crashed = f"{name} (production) on zss-1 is crash-looping"
            await until(lambda: crashed in str(store._rows("outbox")), 60, crashed)
            await asyncio.sleep(WATCHED_SECONDS)  # serve's rounds go on, watched
            assert serve.returncode is None
        finally:
            await stop_cli(serve)
        said = (await serve.stderr.read()).decode()
    log = server.sh("cat", SSHD_LOG).stdout
    assert "no more sessions" not in log, log[-2000:]
    assert 2 <= most(server) <= SESSIONS, most(server)  # serve's event stream and its checks
    assert "refused a new SSH session" not in said, said[-2000:]


def test_a_lost_connection_is_made_again_by_the_next_request(node):
    server, private = node
    login = ssh.Login("zss-1", parse_url(f"ssh://root@{server.ip}"), keys.load(private))
    api = docker_ssh.api_client(login, MINIMUM_API)
    try:
        assert api.version()["ApiVersion"]
        lost = api._custom_adapter.ssh_client.get_transport()  # noqa: SLF001
        # the host ends shipbot's connection (sshd's process for it goes)
        server.sh(
            "sh", "-c",
            "kill $(ps -eo pid=,args= | awk '$2 == \"sshd:\" && $3 == \"root@notty\" "
            "{print $1}')",
        )  # fmt: skip
        deadline = time.monotonic() + 10
        while lost.is_active():
            assert time.monotonic() < deadline, "paramiko never saw the connection end"
            time.sleep(0.05)
        assert api.version()["ApiVersion"]  # over a new connection
        again = api._custom_adapter.ssh_client.get_transport()  # noqa: SLF001
        assert again is not lost and again.is_active()
    finally:
        api.close()
