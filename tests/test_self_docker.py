"""shipbot's own image: `docker build .` works offline from a local base, the container
starts `shipbot serve` as a non-root user that reaches the engine through the socket's
group, says which version came up, and passes its health check."""

from __future__ import annotations

import subprocess
import time
import uuid

import pytest

from tests import self_image

pytestmark = pytest.mark.docker

HEALTHY_WITHIN = 90.0


@pytest.fixture(scope="module")
def image(docker_client):
    took = self_image.build(revision="zi-test")
    print(f"\nshipbot image: {'cached' if took is None else f'built in {took:.1f}s'}")
    return self_image.IMAGE


@pytest.fixture
def container(docker_client, image):
    name = f"zi-self-{uuid.uuid4().hex[:6]}"
    volume = f"{name}-data"
    found = docker_client.containers.run(
        image,
        name=name,
        detach=True,
        volumes={
            volume: {"bind": "/data", "mode": "rw"},
            "/var/run/docker.sock": {"bind": "/var/run/docker.sock", "mode": "rw"},
        },
    )
    try:
        yield found
    finally:
        found.remove(force=True)
        docker_client.volumes.get(volume).remove(force=True)


def health(container) -> str:
    container.reload()
    return container.attrs["State"].get("Health", {}).get("Status", "none")


def test_the_image_serves_healthy_as_a_non_root_user(container, docker_client):
    deadline = time.monotonic() + HEALTHY_WITHIN
    while health(container) != "healthy":
        assert container.status in ("created", "running"), container.logs().decode()[-2000:]
        assert time.monotonic() < deadline, container.logs().decode()[-2000:]
        time.sleep(1)

    status = container.exec_run(["cat", "/proc/1/status"]).output.decode()
    fields = dict(line.split(":\t", 1) for line in status.splitlines() if ":\t" in line)
    assert fields["Uid"].split()[0] == "10001"  # shipbot, not root
    socket_gid = subprocess.run(
        ["stat", "-c", "%g", "/var/run/docker.sock"], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert fields["Groups"].split() == [socket_gid]

    # as pid 1 is: user shipbot with the socket's group, it reaches the engine
    ping = container.exec_run(
        [
            "setpriv",
            "--reuid=shipbot",
            "--regid=shipbot",
            f"--groups={socket_gid}",
            "python3",
            "-c",
            "import docker; print(docker.from_env().ping())",
        ]
    )
    assert ping.output.decode().strip() == "True", ping.output
    logs = container.logs().decode()
    assert "🤖 shipbot 0.1.0 (zi-test) is up" in logs
    assert container.exec_run(["shipbot", "health"]).exit_code == 0


MAX_ABOVE_BASE = 200 * 1000 * 1000  # bytes, as `docker image inspect` counts them


def test_the_image_is_small_says_its_version_and_clones_with_git_without_perl(image, docker_client):
    base = docker_client.images.get(self_image.PYTHON_BASE).attrs["Size"]
    size = docker_client.images.get(image).attrs["Size"]
    assert size - base <= MAX_ABOVE_BASE, f"{(size - base) / 1e6:.0f} MB above the base"

    def run(*argv: str) -> str:
        done = subprocess.run(
            ["docker", "run", "--rm", *argv], capture_output=True, text=True, timeout=120
        )
        assert done.returncode == 0, done.stderr
        return done.stdout

    assert run(image, "--version").startswith("shipbot ")
    script = (
        "cd /tmp && git init -q origin && git -C origin -c user.name=t -c user.email=t@t "
        "commit -q --allow-empty -m first && git clone -q origin copy && "
        "git -C copy log --format=%s && ls /usr/share/perl5 /usr/share/perl 2>&1 | head -1; "
        "python3 -c 'import pip' 2>&1 | tail -1"
    )
    said = run("--entrypoint", "sh", image, "-c", script)
    lines = said.splitlines()
    assert lines[0] == "first"
    assert "No such file or directory" in lines[1]  # perl's modules are gone
    assert "No module named 'pip'" in lines[2]  # nothing installs at run time
