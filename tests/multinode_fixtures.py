"""What the tests on SSH nodes (tests/multinode.py) share: a cluster that shipbot logs in
to with a key made for the run, and a control plane whose shipbot.yml names the test
proxy image (its ACME pointed nowhere: these tests get no certificates)."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

from commands.dispatch import ChatRequest, Dispatcher
from core.servers import keys
from tests.chat import result, say
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


def crash_looping(seconds: int) -> str:
    """A Dockerfile: an app that serves for ``seconds``, then gives up with exit code 3
    (Swarm starts it again)."""
    return (
        "FROM busybox\n"
        'CMD ["sh", "-c", "mkdir -p /www && echo up > /www/index.html && httpd -p 8080 -h '
        f'/www; sleep {seconds}; echo giving up; exit 3"]\n'
    )


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


async def add_server(
    bot: Dispatcher, server: str, node: Node, private: str, user: str, *options: str
) -> None:
    """``private`` imported as key ``server`` and ``node`` added as ``server`` over SSH with
    it (``options``: more of `server add`'s), each checked."""
    imported = await bot.run(
        ChatRequest("console", user, "console", f"ssh-key import {server}", private)
    )
    assert result(imported).ok, imported
    url = f"ssh://root@{node.ip}"
    added = await say(bot, " ".join(["server add", server, url, "--key", server, *options]), user)
    assert result(added).ok, added


async def deploy_new(
    bot: Dispatcher, folder: Path, files: dict[str, str], user: str, domain: str = ""
) -> None:
    """An app made in ``folder`` (named for it) from ``files``, added and deployed, each
    checked; ``domain`` granted to it first."""
    folder.mkdir()
    for file, text in files.items():
        (folder / file).write_text(text)
    name = folder.name
    assert result(await say(bot, f"apps add {name} --path {folder}", user)).ok
    if domain:
        assert result(await say(bot, f"domain grant {name} {domain}", user)).ok
    deployed = await say(bot, f"deploy {name}", user)
    assert result(deployed).ok, deployed


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
