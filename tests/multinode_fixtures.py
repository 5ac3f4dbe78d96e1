"""What the tests on SSH nodes (tests/multinode.py) share: a cluster that shipbot logs in
to with a key made for the run, and a control plane whose shipbot.yml names the test
proxy image (its ACME pointed nowhere: these tests get no certificates)."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

from commands.dispatch import Dispatcher
from core.servers import keys
from tests.multinode import Cluster, Node, build, cluster

TRAEFIK_IMAGE = "shipbot-test/traefik:v3"
POSTGRES_IMAGE = "shipbot-test/postgres:15"
EDGE_YML = (
    f"edge: {{image: {TRAEFIK_IMAGE}, "
    "acme: {ca_server: 'https://127.0.0.1:9/dir', volume: shipbot-edge-acme}}\n"
)
# an app that says which container answered
DOCKERFILE = """\
FROM busybox
CMD mkdir -p /www && hostname > /www/index.html && exec httpd -f -p 8080 -h /www
"""


def login_key() -> tuple[str, str]:
    """A new private key (OpenSSH text) and its authorized_keys line."""
    private = keys.generate()
    return private, keys.public_line(keys.load(private), "shipbot-test")


@contextlib.contextmanager
def ssh_cluster(
    prefix: str,
    subnet: str,
    count: int = 3,
    images: Sequence[str] = (),
    manager_images: Sequence[str] = (),
) -> Iterator[tuple[Cluster, str]]:
    """``count`` nodes with ``images`` loaded on each and ``manager_images`` on the first
    only (what they would pull from a registry), and the private key that logs in to them;
    removed when the block ends."""
    build()
    private, public = login_key()
    with cluster(prefix, subnet, public, images, count=count) as up:
        for image in manager_images:
            up.load(image, up.nodes[:1])
        yield up, private


@contextlib.contextmanager
def plane(home: Path, shipbot_yml: str) -> Iterator[Dispatcher]:
    """A control plane in ``home`` (made here) with ``shipbot_yml``; closed at the end."""
    home.mkdir(parents=True, exist_ok=True)
    (home / "shipbot.yml").write_text(shipbot_yml)
    dispatcher = Dispatcher.open(home)
    try:
        yield dispatcher
    finally:
        dispatcher.close()


def psql(node: Node, service: str, user: str, db: str, sql: str) -> str:
    """``sql`` in the running container of ``service`` on ``node`` (its own engine)."""
    deadline = time.monotonic() + 30
    while True:
        ps = node.sh("docker", "ps", "-q", "-f", f"label=com.docker.swarm.service.name={service}")
        container = ps.stdout.split()[0] if ps.stdout.split() else ""
        if container:
            done = node.sh(
                "docker", "exec", container, "psql", "-U", user, "-d", db, "-At", "-c", sql,
                check=False,
            )  # fmt: skip
            if done.returncode == 0:
                return done.stdout.strip()
        assert time.monotonic() < deadline, f"{service} never answered: {ps.stdout}"
        time.sleep(0.5)
