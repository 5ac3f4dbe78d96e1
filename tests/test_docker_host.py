"""Every remote engine goes through shipbot's own SSH layer: ``DOCKER_HOST=ssh://…`` is
refused at start (and by the engine client), naming the road to take, never dialled with
the docker SDK's SSH (which reads ~/.ssh); an engine that does not answer, and a server
added over SSH that does not answer, are said in one line with what to do, no traceback.
Each with a dead loopback address: a port nothing listens on."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from commands.dispatch import StartError
from commands.replies import Failure
from core.errors import EngineUnavailable
from core.swarm.docker_api import DockerSwarm
from core.swarm.docker_host import SOCKET, engine_url, refuse_ssh, ssh_refusal
from rooms.root import Root
from tests.chat import say

ROOT = Path(__file__).resolve().parent.parent
OPS = "console:ops"


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def refusal(url: str) -> str:
    return (
        f"cannot reach the Docker engine at {url}: shipbot does not dial DOCKER_HOST over "
        "ssh:// (docker's own SSH reads ~/.ssh); a remote engine goes through shipbot's SSH, "
        "with its stored key and the host key it pins. Unset DOCKER_HOST, set `local: false` "
        "in shipbot.yml (no engine beside shipbot), then `ssh-key create default`, put its "
        f"public line on the host, and `server add NAME {url}`"
    )


@pytest.fixture
def listening() -> Iterator[tuple[socket.socket, str]]:
    """A loopback port that listens but is never answered: whatever dials it is seen."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(4)
        sock.setblocking(False)
        yield sock, f"ssh://deploy@127.0.0.1:{sock.getsockname()[1]}"


def dialled(sock: socket.socket) -> bool:
    try:
        sock.accept()[0].close()
    except BlockingIOError:
        return False
    return True


def test_docker_host_ssh_is_refused_with_the_road_to_take_and_others_pass():
    url = "ssh://deploy@203.0.113.7:2222"
    assert ssh_refusal(url) == refusal(url)
    assert ssh_refusal("unix:///run/docker.sock") is None
    assert ssh_refusal("tcp://10.0.0.2:2376") is None
    assert engine_url({}) == SOCKET == "unix:///var/run/docker.sock"
    assert engine_url({"DOCKER_HOST": ""}) == SOCKET
    assert engine_url({"DOCKER_HOST": url}) == url
    refuse_ssh({"DOCKER_HOST": "tcp://10.0.0.2:2376"})  # not refused: nothing raised
    with pytest.raises(EngineUnavailable) as refused:
        refuse_ssh({"DOCKER_HOST": url})
    assert str(refused.value) == refusal(url)


def test_the_plane_refuses_docker_host_ssh_at_start_without_dialling_it(
    tmp_path, monkeypatch, listening
):
    sock, url = listening
    (tmp_path / "shipbot.yml").write_text(f"admins: [{OPS}]\n")
    monkeypatch.setenv("DOCKER_HOST", url)
    with pytest.raises(StartError) as refused:
        Root.open(tmp_path)
    assert str(refused.value) == f"shipbot cannot start: {refusal(url)}"
    assert not dialled(sock)


def test_the_engine_client_refuses_ssh_and_names_an_engine_away(listening):
    sock, url = listening
    with pytest.raises(EngineUnavailable) as refused:
        DockerSwarm.connect(url, timeout=5)
    assert str(refused.value) == refusal(url)
    assert not dialled(sock)
    dead = f"tcp://127.0.0.1:{closed_port()}"
    with pytest.raises(EngineUnavailable) as away:
        DockerSwarm.connect(dead, timeout=5)
    assert str(away.value) == (
        f"cannot reach the Docker engine at {dead}: is dockerd running? "
        "(`./dev setup` starts one; or `systemctl start docker`)"
    )


def test_without_a_local_server_docker_host_is_not_read(tmp_path, monkeypatch, listening):
    sock, url = listening
    (tmp_path / "shipbot.yml").write_text(f"admins: [{OPS}]\nlocal: false\n")
    monkeypatch.setenv("DOCKER_HOST", url)
    root = Root.open(tmp_path)
    try:
        assert not root.plane.servers.has_local
    finally:
        root.dispatcher.close()
    assert not dialled(sock)


async def test_a_server_added_over_ssh_that_does_not_answer_is_named_in_one_line(tmp_path):
    (tmp_path / "shipbot.yml").write_text(f"admins: [{OPS}]\nlocal: false\n")
    root = Root.open(tmp_path)
    bot = root.dispatcher
    try:
        assert (await say(bot, "ssh-key create default", OPS))[-1].ok
        port = closed_port()
        bot.engine.store.add_server(
            {
                "name": "eu-1",
                "url": f"ssh://root@127.0.0.1:{port}",
                "key": "default",
                "host_key_kind": "ssh-ed25519",
                "host_key": "AAAA",
                "role": "manager",
                "swarm": "eu-1",
                "added_by": OPS,
                "added_at": 1.0,
            }
        )
        replies = await say(bot, "proxy status --server eu-1", OPS)
        assert [type(r) for r in replies] == [Failure], replies
        # a viewer's command (`proxy status`): the server and why, never its address
        assert replies[0].message == (
            "the proxy is on server eu-1, which cannot be reached: cannot reach server eu-1 "
            "over SSH (connection refused): an admin can run `server check eu-1`; nothing was "
            "changed (other servers: none added yet)"
        )
        # `server check`, an admin's, says the address too
        checked = await say(bot, "server check eu-1", OPS)
        assert [type(r) for r in checked] == [Failure], checked
        assert checked[0].message == (
            f"cannot reach server eu-1 at ssh://root@127.0.0.1:{port} over SSH (connection "
            "refused): check the address, that sshd runs there and that the port is open to "
            "shipbot; nothing was changed"
        )
    finally:
        bot.close()


@pytest.mark.parametrize("argv", [["serve"], ["chat", "status"]])
def test_serve_and_chat_say_it_on_one_line_with_no_traceback(tmp_path: Path, argv):
    (tmp_path / "shipbot.yml").write_text(f"admins: [{OPS}]\n")
    url = f"ssh://deploy@127.0.0.1:{closed_port()}"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "DISCORD_"))}
    done = subprocess.run(
        [sys.executable, "-m", "bot.cli", *argv],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={**env, "SHIPBOT_HOME": str(tmp_path), "DOCKER_HOST": url, "USER": "ops"},
        timeout=60,
    )
    assert (done.returncode, done.stdout) == (1, "")
    assert done.stderr == f"❌ shipbot cannot start: {refusal(url)}\n"
