"""Drift on the real engine: a service changed behind shipbot's back (`docker service
update`, `docker service rm`, a hand-made service with shipbot's labels) shows in
`status --drift`, and what shipbot itself changes (deploy, scale) does not."""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import uuid
from pathlib import Path

import docker.errors
import pytest

from commands.dispatch import Dispatcher
from commands.replies import Message
from tests.chat import result, say, table

pytestmark = pytest.mark.docker

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "hello"
NO_DRIFT = "no drift: the swarm runs what shipbot deployed"


@pytest.fixture
def app(tmp_path: Path) -> tuple[str, Path]:
    name = f"zt{uuid.uuid4().hex[:7]}"
    folder = tmp_path / name
    shutil.copytree(EXAMPLE, folder)
    yml = folder / "app.yml"
    yml.write_text(
        yml.read_text()
        .replace("name: hello", f"name: {name}")
        .replace("replicas: 2", "replicas: 1")
        # no start period: the engine hands back no "StartPeriod" for it, which is no drift
        .replace(", start_period: 1s}", "}")
    )
    return name, folder


@pytest.fixture
def bot(docker_client, tmp_path: Path, app, made_apps):
    home = tmp_path / "home"
    home.mkdir()
    (home / "shipbot.yml").write_text("admins: [console:alice]\n")
    dispatcher = Dispatcher.open(home)
    made_apps.append(app[0])
    yield dispatcher
    dispatcher.close()


def docker_cli(*argv: str) -> None:
    subprocess.run(["docker", *argv], check=True, capture_output=True, timeout=120)


def messages(replies) -> list[str]:
    return [r.text for r in replies if isinstance(r, Message)]


async def test_drift_behind_shipbots_back(bot, app, docker_client):
    name, folder = app
    service = f"{name}-production"
    assert result(await say(bot, f"apps add {name} --path {folder}")).ok
    assert result(await say(bot, f"deploy {name}")).ok

    # what shipbot deployed, and what it scaled, is no drift: the engine's own defaults
    # in the spec it hands back count for nothing
    assert messages(await say(bot, "status --drift")) == [NO_DRIFT]
    assert result(await say(bot, f"scale {name} 2")).ok
    assert messages(await say(bot, f"status {name} --drift")) == [NO_DRIFT]
    # status counts tasks from one list of the whole swarm's live tasks, by label
    rows = table(await say(bot, f"status {name}")).rows
    assert rows == ((name, "production", "1", "2/2 healthy", ""),)

    # by hand: another tag of the same image, a variable, one replica
    other = f"zt-drift/{name}:other"
    docker_client.api.tag(f"shipbot/{name}:1", f"zt-drift/{name}", "other")
    try:
        docker_cli(
            "service", "update", "--detach", "--image", other, "--env-add", "DEBUG=1",
            "--replicas", "1", service,
        )  # fmt: skip
        drift = table(await say(bot, "status --drift"))
        assert drift.columns == ("app", "env", "server", "drift", "detail")
        rows = {row[3]: row for row in drift.rows}
        assert sorted(rows) == ["image differs", "replicas differ", "spec differs"]
        assert rows["image differs"][:3] == (name, "production", "local")
        assert rows["image differs"][4] == f"runs {other}; release 1 is shipbot/{name}:1"
        assert rows["replicas differ"][4] == "Swarm wants 1 task; the store says 2"
        assert rows["spec differs"][4].startswith("env (DEBUG added) changed outside shipbot")

        # gone altogether
        docker_cli("service", "rm", service)
        (row,) = table(await say(bot, f"status {name} --drift")).rows
        assert row[3:] == (
            "service missing",
            f"{service} is not on local, yet release 1 is live in the store: "
            f"`deploy {name}` or `rollback {name}` puts it back",
        )

        # a service with shipbot's labels the store never deployed
        docker_cli(
            "service", "create", "--detach", "--name", f"{name}-staging",
            "--label", f"shipbot.app={name}", "--label", "shipbot.env=staging",
            "--label", "shipbot.release=7", "--stop-grace-period", "1s",
            "busybox:latest", "sleep", "600",
        )  # fmt: skip
        rows = {row[3]: row for row in table(await say(bot, f"status {name} --drift")).rows}
        assert rows["no release"][1] == "staging"
        assert rows["no release"][4] == (
            f"{name}-staging carries shipbot's labels (release 7) but the store has no live "
            f"release of {name} on staging"
        )
    finally:
        with contextlib.suppress(docker.errors.APIError):
            docker_client.api.remove_service(f"{name}-staging")
        with contextlib.suppress(docker.errors.APIError):
            docker_client.api.remove_service(service)
        # untag by name: the example's image is one id under many apps' tags
        for tag in (other, f"shipbot/{name}:1"):
            with contextlib.suppress(docker.errors.APIError):
                docker_client.api.remove_image(tag)
