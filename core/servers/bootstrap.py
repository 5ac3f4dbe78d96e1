"""Bootstrapping a host over SSH with Fabric: Docker, then its swarm, step by step.

Builders return argv lists (tested exactly); ``Bootstrap`` runs them and says what it found
and did, so every step is safe to run again: an installed engine is left alone, a node
already in the intended swarm is not joined twice. Nothing is opened on the host: swarm
ports are Docker's own, and the only published ports are the proxy's (core/edge).
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from fabric import Connection

from core.servers import ssh
from core.servers.errors import ServerError

SWARM_PORT = 2377
ENGINE_WAIT_SECONDS = 60
STARTING_SECONDS = 10  # how long an engine just installed gets to come up by itself

HAS_DOCKER = ["sh", "-c", "command -v docker"]
SWARM_STATE = ["docker", "info", "--format", "{{json .Swarm}}"]
ENGINE_VERSION = ["docker", "version", "--format", "{{.Server.Version}}"]
# systemd runs this host (not merely installed): /run/systemd/system exists only then
HAS_SYSTEMD = ["test", "-d", "/run/systemd/system"]


def sudo(user: str, argv: list[str]) -> list[str]:
    """Root's commands: as they are for root, through ``sudo -n`` for anyone else."""
    return argv if user == "root" else ["sudo", "-n", *argv]


def install_docker(user: str) -> list[list[str]]:
    """Debian's docker.io, the engine the tests and Debian hosts run."""
    return [
        sudo(user, ["apt-get", "update", "-q"]),
        sudo(
            user,
            [
                "env",
                "DEBIAN_FRONTEND=noninteractive",
                "apt-get",
                "install",
                "-y",
                "-q",
                "--no-install-recommends",
                "docker.io",
            ],
        ),
    ]


def start_engine(user: str, systemd: bool) -> list[str]:
    """Start dockerd where the package did not (hosts without systemd start nothing)."""
    if systemd:
        return sudo(user, ["systemctl", "enable", "--now", "docker"])
    return sudo(user, ["service", "docker", "start"])


def swarm_init(address: str) -> list[str]:
    return ["docker", "swarm", "init", "--advertise-addr", address]


def join_token(role: str) -> list[str]:
    return ["docker", "swarm", "join-token", "-q", role]


def swarm_join(address: str, token: str, manager: str) -> list[str]:
    return ["docker", "swarm", "join", "--advertise-addr", address, "--token", token, manager]


def node_ids() -> list[str]:
    return ["docker", "node", "ls", "--format", "{{.ID}}"]


@dataclass(frozen=True)
class SwarmState:
    state: str  # inactive, active, pending, error, locked
    manager: bool
    node_id: str
    address: str

    @classmethod
    def parse(cls, text: str) -> SwarmState:
        info: dict[str, Any] = json.loads(text)
        return cls(
            info.get("LocalNodeState", ""),
            bool(info.get("ControlAvailable")),
            info.get("NodeID", ""),
            info.get("NodeAddr", ""),
        )


def peer_address(conn: Connection) -> str:
    """The address shipbot reached the host at: what the swarm advertises for it."""
    return conn.client.get_transport().getpeername()[0]


def ensure_docker(conn: Connection, user: str) -> Iterator[str]:
    if ssh.run(conn, HAS_DOCKER).exited == 0:
        yield "Docker is installed"
    else:
        yield "Docker is missing: installing docker.io with apt"
        for argv in install_docker(user):
            ssh.check(conn, argv, " ".join(argv[:4]))
        yield "docker.io installed"
    if not _answers(conn, STARTING_SECONDS):
        systemd = ssh.run(conn, HAS_SYSTEMD).exited == 0
        ssh.check(conn, start_engine(user, systemd), "starting dockerd")
        yield "dockerd started"
    deadline = time.monotonic() + ENGINE_WAIT_SECONDS
    while True:
        ran = ssh.run(conn, ENGINE_VERSION)
        if ran.exited == 0:
            yield f"the engine answers (Docker {ran.stdout.strip()})"
            return
        if time.monotonic() > deadline:
            raise ServerError(
                "Docker is installed on the server but its engine does not answer: "
                f"{ran.stderr.strip()[-200:]} (is dockerd running? may the user use it?)"
            )
        time.sleep(1)


def _answers(conn: Connection, seconds: float) -> bool:
    """The engine answers within ``seconds`` (a package's start may still be under way)."""
    deadline = time.monotonic() + seconds
    while ssh.run(conn, ENGINE_VERSION).exited != 0:
        if time.monotonic() > deadline:
            return False
        time.sleep(0.5)
    return True


def swarm_state(conn: Connection) -> SwarmState:
    return SwarmState.parse(ssh.check(conn, SWARM_STATE, "reading the swarm state"))


def ensure_swarm(
    conn: Connection, manager: Connection | None, role: str, name: str, swarm: str
) -> Iterator[str]:
    """Init a new swarm (``manager`` None) or join ``manager``'s as ``role``."""
    state = swarm_state(conn)
    if manager is None:
        if state.state == "active" and state.manager:
            yield f"already a swarm manager (node {state.node_id[:12]})"
            return
        if state.state == "active":
            raise ServerError(
                f"{name} is a worker in a swarm shipbot does not manage: add its manager "
                f"instead, or run `docker swarm leave` on {name} first"
            )
        address = peer_address(conn)
        ssh.check(conn, swarm_init(address), "docker swarm init")
        yield f"swarm initialised, advertising {address}"
        return
    members = ssh.check(manager, node_ids(), "listing the swarm's nodes").split()
    if state.state == "active":
        if state.node_id in members:
            yield f"already a node of swarm {swarm} (node {state.node_id[:12]})"
            return
        raise ServerError(
            f"{name} is in another swarm: run `docker swarm leave` on it first, then add it again"
        )
    token = ssh.check(manager, join_token(role), "reading the join token").strip()
    target = f"{swarm_state(manager).address}:{SWARM_PORT}"
    ssh.check(conn, swarm_join(peer_address(conn), token, target), "docker swarm join")
    yield f"joined swarm {swarm} as {role}"
