"""Three "servers" on this host: Docker-in-Docker containers, each with sshd and its own
dockerd, on one bridge network (../shared recipe "multinode", verified flags).

The node image is built once from the tests' debootstrap base (tests/db_images.py) and
cached by tag and build-context digest: ``python -m tests.multinode`` (``./dev setup`` runs
it). ``Cluster`` starts the nodes bare: no swarm, only the login key in authorized_keys and
the images the test deploys already loaded (nothing can be pulled here). shipbot does the rest.
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import subprocess
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from tests.db_images import BASE, LABEL, build_base, cached, digest, one_builder, say

NODE_IMAGE = "shipbot-test/node:bookworm"
BARE_IMAGE = "shipbot-test/node-bare:bookworm"  # sshd only: shipbot installs Docker
CONTEXT = Path(__file__).parent / "multinode"
START_SECONDS = 60

# privileged minus CAP_SYS_RESOURCE, which this host's dockerd cannot grant
NODE_FLAGS = (
    "--cap-add",
    "ALL",
    "--cap-drop",
    "SYS_RESOURCE",
    "--security-opt",
    "seccomp=unconfined",
    "--security-opt",
    "systempaths=unconfined",
    "--device-cgroup-rule",
    "a *:* rwm",
    "--stop-timeout",
    "30",
)


def docker(*argv: str, check: bool = True, **options) -> subprocess.CompletedProcess:
    return subprocess.run(["docker", *argv], check=check, capture_output=True, text=True, **options)


def build() -> None:
    with one_builder("node-images"):  # every cluster module asks, on two workers
        _build()


def _build() -> None:
    for tag, engine in ((NODE_IMAGE, "docker.io"), (BARE_IMAGE, "")):
        if cached(tag, CONTEXT):
            say(f"image {tag}: cached")
            continue
        build_base()
        label = f"{LABEL}={digest(CONTEXT)}"
        started = time.monotonic()
        argv = ["docker", "build", "-q", "--label", label, "--build-arg", f"ENGINE={engine}"]
        done = subprocess.run(
            [*argv, "-t", tag, str(CONTEXT)],
            capture_output=True,
            text=True,
            env=dict(os.environ, DOCKER_BUILDKIT="0"),
        )
        if done.returncode != 0:
            raise SystemExit(f"building {tag} failed:\n{done.stdout}{done.stderr}")
        say(f"image {tag}: built from {BASE} in {time.monotonic() - started:.0f}s")


@dataclass
class Node:
    name: str
    ip: str

    def sh(self, *argv: str, check: bool = True) -> subprocess.CompletedProcess:
        return docker("exec", self.name, *argv, check=check)

    def engine_ready(self) -> bool:
        return self.sh("docker", "info", check=False).returncode == 0


@dataclass
class Cluster:
    """``prefix``-node1..N on network ``prefix``-net with the given /24 subnet."""

    prefix: str
    subnet: str
    count: int = 3
    nodes: list[Node] = field(default_factory=list)
    extra: list[str] = field(default_factory=list)

    @property
    def network(self) -> str:
        return f"{self.prefix}-net"

    def up(self, authorized_key: str, images: Sequence[str] = ()) -> None:
        self.down()
        hosts = list(ipaddress.ip_network(self.subnet).hosts())
        docker("network", "create", "--subnet", self.subnet, self.network)
        for n in range(1, self.count + 1):
            node = Node(f"{self.prefix}-node{n}", str(hosts[10 + n - 1]))
            docker(
                "run", "-d", "--name", node.name, "--hostname", node.name, *NODE_FLAGS,
                "--network", self.network, "--ip", node.ip, "-v", "/var/lib/docker",
                "-e", f"NODE_AUTHORIZED_KEY={authorized_key}", NODE_IMAGE,
            )  # fmt: skip
            self.nodes.append(node)
        deadline = time.monotonic() + START_SECONDS
        for node in self.nodes:
            while not node.engine_ready():
                if time.monotonic() > deadline:
                    logs = docker("logs", "--tail", "20", node.name, check=False)
                    raise RuntimeError(f"{node.name}'s dockerd never answered:\n{logs.stderr}")
                time.sleep(0.2)
        for image in images:
            self.load(image)

    def add(self, n: int, image: str, authorized_key: str) -> Node:
        """One more node (``image``: BARE_IMAGE for a host without Docker); ``down``
        removes it too."""
        hosts = list(ipaddress.ip_network(self.subnet).hosts())
        node = Node(f"{self.prefix}-node{n}", str(hosts[10 + n - 1]))
        docker(
            "run", "-d", "--name", node.name, "--hostname", node.name, *NODE_FLAGS,
            "--network", self.network, "--ip", node.ip, "-v", "/var/lib/docker",
            "-e", f"NODE_AUTHORIZED_KEY={authorized_key}", image,
        )  # fmt: skip
        self.extra.append(node.name)
        return node

    def load(self, image: str, nodes: Sequence[Node] | None = None) -> None:
        """What a node would pull from a registry, streamed from this host's engine."""
        for node in nodes or self.nodes:
            with subprocess.Popen(["docker", "save", image], stdout=subprocess.PIPE) as save:
                subprocess.run(
                    ["docker", "exec", "-i", node.name, "docker", "load", "-q"],
                    stdin=save.stdout, check=True, capture_output=True,
                )  # fmt: skip
            assert save.returncode == 0

    def down(self) -> None:
        names = [f"{self.prefix}-node{n}" for n in range(1, self.count + 1)]
        docker("rm", "-f", "-v", *names, *self.extra, check=False)
        self.extra.clear()
        for _ in range(20):  # the network is busy for a moment after its last container
            gone = docker("network", "rm", self.network, check=False)
            if gone.returncode == 0 or "not found" in gone.stderr:
                break
            time.sleep(0.5)
        self.nodes.clear()


@contextlib.contextmanager
def cluster(
    prefix: str, subnet: str, authorized_key: str, images: Sequence[str] = (), count: int = 3
) -> Iterator[Cluster]:
    nodes = Cluster(prefix, subnet, count)
    try:
        nodes.up(authorized_key, images)
        yield nodes
    finally:
        nodes.down()


if __name__ == "__main__":
    build()
