"""shipbot's image run the way deploy/k8s/deployment.yml runs it, as a plain container:
user 10001, every capability dropped, no privilege escalation, the secrets a read-only
folder of files, SQLite on a named volume, no Docker socket and no ``DOCKER_HOST``. The
test talks to it as an operator would, with ``docker exec … shipbot chat --json``, and
reads what it said: the lines naming a server away, its SSH dials (logged on request), the
alerts ``serve`` posted to the console route."""

from __future__ import annotations

import contextlib
import os
import subprocess
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from commands.replies import Failure, Message, Reply, Result, decode
from tests.multinode import docker

ADMIN = "console:alice"
CHAT_SECONDS = 300  # the longest a command may take (a first build on a node)
DIALS_LOGGED = {"SHIPBOT_LOG_LEVEL": "DEBUG"}  # how long each SSH dial took, on stderr


@dataclass(frozen=True)
class Said:
    """What one ``shipbot chat`` printed: its replies, its exit status, how long it took."""

    replies: list[Reply]
    code: int
    seconds: float
    stdout: str
    stderr: str

    @property
    def text(self) -> str:
        return self.stdout + self.stderr


@dataclass(frozen=True)
class ControlPlane:
    container: str
    volume: str

    def chat(
        self, text: str, stdin: str | None = None, env: Mapping[str, str] | None = None
    ) -> Said:
        argv = ["docker", "exec", *(["-i"] if stdin is not None else [])]
        for name, value in (env or {}).items():
            argv += ["-e", f"{name}={value}"]
        argv += [self.container, "shipbot", "chat", "--json", "--as", ADMIN, text]
        started = time.monotonic()
        done = subprocess.run(
            argv, input=stdin, capture_output=True, text=True, timeout=CHAT_SECONDS
        )
        seconds = time.monotonic() - started
        replies = [decode(line) for line in done.stdout.splitlines() if line.startswith("{")]
        return Said(replies, done.returncode, seconds, done.stdout, done.stderr)

    def logs(self) -> str:
        done = docker("logs", self.container, check=False)
        return done.stdout + done.stderr

    def user(self) -> str:
        return docker("exec", self.container, "id", "-u").stdout.strip()


def write_secrets(folder: Path, secrets: Mapping[str, str]) -> Path:
    """One file per secret, readable by the container's user only (as Kubernetes mounts a
    Secret with ``defaultMode`` 0400 for the pod's user)."""
    folder.mkdir(parents=True, exist_ok=True)
    folder.chmod(0o755)
    for name, value in secrets.items():
        path = folder / name
        path.write_text(value)
        os.chown(path, 10001, 10001)
        path.chmod(0o400)
    return folder


@contextlib.contextmanager
def control_plane(
    image: str,
    name: str,
    networks: Sequence[str],
    secrets: Path,
    shipbot_yml: str,
    mounts: Sequence[str] = (),
) -> Iterator[ControlPlane]:
    """``shipbot serve`` in a container on ``networks``; removed with its volume at the end."""
    volume = f"{name}-data"
    flags = [
        "--user", "10001:10001", "--cap-drop", "ALL", "--security-opt", "no-new-privileges",
        "--network", networks[0], "-v", f"{volume}:/data",
        "-v", f"{secrets}:/run/secrets:ro", "-e", "SHIPBOT_SECRETS_DIR=/run/secrets",
    ]  # fmt: skip
    for mount in mounts:
        flags += ["-v", mount]
    try:
        docker("create", "--name", name, *flags, image, "serve")
        with tempfile.TemporaryDirectory() as folder:
            config = Path(folder) / "shipbot.yml"
            config.write_text(shipbot_yml)
            config.chmod(0o644)
            docker("cp", str(config), f"{name}:/data/shipbot.yml")
        for network in networks[1:]:
            docker("network", "connect", network, name)
        docker("start", name)
        found = ControlPlane(name, volume)
        _wait_up(found)
        yield found
    finally:
        docker("rm", "-f", name, check=False)
        docker("volume", "rm", "-f", volume, check=False)


def _wait_up(plane: ControlPlane, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while "control plane up" not in plane.logs():
        state = docker("inspect", "-f", "{{.State.Status}}", plane.container).stdout.strip()
        assert state == "running", f"the control plane stopped:\n{plane.logs()[-3000:]}"
        assert time.monotonic() < deadline, f"serve did not start:\n{plane.logs()[-3000:]}"
        time.sleep(0.5)


def naming(said: Said, server: str) -> list[str]:
    """The lines of the replies that say ``server`` is unreachable (a table's rows are not
    lines): one per command, not one per app or database on it."""
    lines = [
        r.text if isinstance(r, Message) else r.message
        for r in said.replies
        if isinstance(r, Message | Failure)
    ]  # fmt: skip
    return [line for line in lines if server in line and "unreachable" in line]


def dials(said: Said) -> str:
    """The plane's SSH dials during one command, as it logged them (DIALS_LOGGED)."""
    return "".join(f"  {line}\n" for line in said.stderr.splitlines() if "shipbot.servers" in line)


def posted(plane: ControlPlane, title: str, until: float) -> list[Result]:
    """The alerts ``serve`` posted whose title starts with ``title``, once there is one
    (waiting until the monotonic time ``until``); [] when none came by then."""
    while True:
        said = plane.chat("notifications --kind alerts")
        found = [
            r for r in said.replies if isinstance(r, Result) and r.title.startswith(title)
        ]  # fmt: skip
        if found or time.monotonic() > until:
            return found
        time.sleep(2)
