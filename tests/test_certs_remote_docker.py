"""The certificate watcher that ``serve`` runs reads a REMOTE server's own proxy at the
public address recorded for it (issue 23): a node with sshd and its own engine
(tests/multinode.py) is added over SSH with ``--address`` naming a second address of the
node; its Traefik gets a certificate from pebble (a real ACME CA on this host). The node
drops HTTPS to its SSH address, so only a handshake at the public address can see the
certificate. The watcher (built as rooms/edge.py builds it) posts the issuance, and, on
its injected clock, the expiry alert, word for word as the fast tier says.

Every name here starts with ``zce``; the node and its networks are removed at the end.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid
from collections.abc import Iterator

import pytest

from commands.catalog.certs import watch
from commands.notify import Notifier
from core.config import NotifyRoute
from tests.clock import ManualClock
from tests.multinode import Node, docker
from tests.multinode_fixtures import (
    DOCKERFILE,
    TRAEFIK_IMAGE,
    add_server,
    deploy_new,
    plane,
    ssh_cluster,
)
from tests.pebble import Pebble, pebble

pytestmark = pytest.mark.docker

PREFIX, SUBNET = "zce", "192.168.209.0/24"
ADMIN = "console:alice"
# the node's second address, its public one, on a network of its own
PUBLIC_NET, PUBLIC_SUBNET, PUBLIC_IP = "zce-pub", "192.168.211.0/24", "192.168.211.11"
# pebble listens on this host's address on the node's bridge, from port 16300 on (17300:
# management, 16302: DNS, 16303: challtestsrv), and pebble's CA is a swarm config there
HOST, PEBBLE_PORT, CA_CONFIG = "192.168.209.1", 16300, "zce-pebble-ca"
CERT_SECONDS = 120.0  # for Traefik to have its certificate from pebble
APP_YML = """\
name: {name}
build: .
port: 8080
domains: [{domain}]
stop_grace_period: 1s
environments:
  production: {{server: zce-1, replicas: 1}}
"""


@pytest.fixture
def node(docker_client) -> Iterator[tuple[Node, str]]:
    """One node on two networks: its SSH address, and ``PUBLIC_IP``."""
    docker("network", "rm", PUBLIC_NET, check=False)
    with ssh_cluster(PREFIX, SUBNET, 1, ["busybox:latest", TRAEFIK_IMAGE]) as (up, private):
        try:
            docker("network", "create", "--subnet", PUBLIC_SUBNET, PUBLIC_NET)
            docker("network", "connect", "--ip", PUBLIC_IP, PUBLIC_NET, up.nodes[0].name)
            yield up.nodes[0], private
        finally:
            docker("network", "disconnect", "-f", PUBLIC_NET, up.nodes[0].name, check=False)
            docker("network", "rm", PUBLIC_NET, check=False)


@pytest.fixture
def ca(tmp_path) -> Iterator[Pebble]:
    (tmp_path / "pebble").mkdir()
    with pebble(tmp_path / "pebble", HOST, 80, 3600, PEBBLE_PORT) as found:
        yield found


async def test_the_watcher_reads_a_remote_servers_proxy_at_its_public_address(
    node, ca, tmp_path, made_apps
):
    server, private = node
    name = f"zce{uuid.uuid4().hex[:6]}"
    domain = f"{name}.zce.test"
    made_apps.append(name)
    ca.resolve(domain, server.ip)  # where pebble checks HTTP-01
    server.sh("docker", "swarm", "init", "--advertise-addr", server.ip)
    docker(
        "exec", "-i", server.name, "docker", "config", "create", CA_CONFIG, "-",
        input=ca.ca_pem.decode(),
    )  # fmt: skip
    # HTTPS to the SSH address goes nowhere: a certificate seen was read at PUBLIC_IP
    server.sh(
        "iptables", "-t", "raw", "-I", "PREROUTING", "-d", server.ip, "-p", "tcp",
        "--dport", "443", "-j", "DROP",
    )  # fmt: skip
    yml = (
        f"admins: [{ADMIN}]\n"
        "local: false\n"
        "server_apps: {zce-1: ['zce*']}\n"
        f"edge: {{image: {TRAEFIK_IMAGE}, acme: {{email: ops@zce.test, "
        f"ca_server: '{ca.directory}', ca_certificates: {CA_CONFIG}, volume: zce-acme}}}}\n"
    )
    with plane(tmp_path / "home", yml) as bot:
        await add_server(bot, "zce-1", server, private, ADMIN, "--address", PUBLIC_IP)
        files = {"Dockerfile": DOCKERFILE, "app.yml": APP_YML.format(name=name, domain=domain)}
        await deploy_new(bot, tmp_path / name, files, ADMIN, domain)

        routes = [NotifyRoute(platform="console", channel="ops", kinds=["certs"])]
        notifier = Notifier(bot.engine.store, routes)
        clock = ManualClock.at(dt.datetime.now(dt.UTC))
        watcher = watch(bot.engine.plane, notifier, clock=clock, dns=bot.config.dns)
        posts: list[str] = []
        for _ in range(int(CERT_SECONDS)):
            posts = [p.text for p in await watcher.check()]
            if posts:
                break
            await asyncio.sleep(1)
        (issued,) = posts
        assert issued.startswith(f"🔒 certificate issued for {domain} on server zce-1, valid"), (
            issued
        )
        assert "(by Pebble Intermediate CA" in issued

        (state,) = [s for s in bot.engine.store.cert_states() if s["domain"] == domain]
        until = dt.datetime.fromtimestamp(state["not_after"], dt.UTC)
        clock.advance(until.timestamp() - clock.time() - 60)  # a minute before it ends
        (alert,) = [p.text for p in await watcher.check()]
        assert alert == (
            f"⚠️ certificate for {domain} on server zce-1 expires in 0 days "
            f"({until:%Y-%m-%d %H:%M UTC}) and has not been renewed: check the proxy's log "
            "(`logs` of the edge service) and the domain's DNS"
        )
