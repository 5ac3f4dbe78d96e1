"""`apps remove` on the real engine: the example app deployed to two environments, one
removed, then the whole app with the README's clean-up command; nothing of it is left but
the named volume the reply says it kept, which goes the way the reply says."""

from __future__ import annotations

import re
import shutil
import uuid
from pathlib import Path

import docker.errors
import pytest

from commands.dispatch import Dispatcher
from tests.chat import result, say

pytestmark = pytest.mark.docker

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "hello"


def readme_cleanup() -> str:
    """The clean-up command the README's demo shows."""
    found = re.search(r"^shipbot> (apps remove hello)$", (ROOT / "README.md").read_text(), re.M)
    assert found, "the README shows no `apps remove hello` in the demo"
    return found.group(1)


@pytest.fixture
def app(tmp_path: Path) -> tuple[str, Path]:
    """A copy of examples/hello under a unique name, with a named volume."""
    name = f"t{uuid.uuid4().hex[:8]}"
    folder = tmp_path / name
    shutil.copytree(EXAMPLE, folder)
    yml = folder / "app.yml"
    text = yml.read_text().replace("name: hello", f"name: {name}")
    yml.write_text(text + 'volumes: ["data:/data"]\n')
    return name, folder


@pytest.fixture
def bot(tmp_path: Path, app, made_apps):
    home = tmp_path / "home"
    home.mkdir()
    (home / "shipbot.yml").write_text("admins: [console:alice]\n")
    dispatcher = Dispatcher.open(home)
    made_apps.append(app[0])  # a safety net: removed again at the module's end
    yield dispatcher
    dispatcher.close()


def left_on_engine(client, name: str) -> dict[str, list[str]]:
    api = client.api
    return {
        "services": [
            s["Spec"]["Name"] for s in api.services(filters={"label": f"shipbot.app={name}"})
        ],
        "networks": [n["Name"] for n in api.networks() if name in n["Name"]],
        "images": [t for i in api.images() for t in i.get("RepoTags") or [] if f"/{name}:" in t],
        "volumes": sorted(v["Name"] for v in api.volumes()["Volumes"] or [] if name in v["Name"]),
    }


async def test_remove_one_environment_then_the_whole_app(bot, app, docker_client):
    name, folder = app
    assert result(await say(bot, f"apps add {name} --path {folder}")).ok
    assert result(await say(bot, f"deploy {name}")).ok
    assert result(await say(bot, f"deploy {name} --env staging")).ok
    before = left_on_engine(docker_client, name)
    assert sorted(before["services"]) == [f"{name}-production", f"{name}-staging"]
    assert len(before["images"]) == 2 and len(before["volumes"]) == 2

    staging = result(await say(bot, f"apps remove {name} --env staging"))
    assert staging.ok and staging.title == f"{name} (staging) removed; the app stays registered"
    after = left_on_engine(docker_client, name)
    assert after["services"] == [f"{name}-production"]
    assert after["networks"] == [f"shipbot-{name}-production"]
    assert after["images"] == [f"shipbot/{name}:1"]
    assert after["volumes"] == before["volumes"]  # kept by default
    assert f"kept volume {name}-staging-data" in " ".join(staging.details)

    replies = await say(bot, readme_cleanup().replace("hello", name))
    print("\n".join(map(str, replies)))  # what the README's transcript shows
    done = result(replies)
    assert done.ok and done.title == f"{name} removed and unregistered"
    assert done.details[:3] == (
        f"removed service {name}-production",
        f"removed network shipbot-{name}-production",
        f"removed image shipbot/{name}:1",
    )
    gone = left_on_engine(docker_client, name)
    assert gone == {
        "services": [],
        "networks": [],
        "images": [],
        "volumes": [f"{name}-production-data", f"{name}-staging-data"],
    }
    assert bot.engine.store.list_apps() == []
    # the volumes go the way the replies say
    for volume in gone["volumes"]:
        docker_client.api.remove_volume(volume)
    with pytest.raises(docker.errors.NotFound):
        docker_client.api.inspect_volume(f"{name}-production-data")
