"""Previews on a server of their own (issue 23): the registered app.yml's `previews.server`
(else its top-level `server:`) is where a pull request's preview is built, runs and is
torn down; the pull request's own app.yml cannot move it; a server not open to the app is
refused before anything is made. Three fake swarms, a git repository with a bare origin,
the webhook receiver."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from commands.dispatch import ChatRequest, Dispatcher
from commands.hooks import Receiver
from commands.replies import Failure
from core.appspec import parse_app_config
from core.config import ControlConfig, NotifyRoute
from core.engine import Engine
from core.pipelines.preview import preview_spec
from core.secrets import Vault
from core.store import Store
from core.swarm.servers import Servers
from tests.chat import result, say
from tests.clock import SwarmSteps
from tests.fake_plane import fast_swarm
from tests.forge_payloads import ADMIN, SECRET, Repo, deliver, github_pull, posted

APP_YML = """\
name: zpapp
build: .
port: 8080
previews: {domain: "pr-{number}.preview.test", https: false, server: eu-1}
environments:
  production: {server: eu-2}
"""
SERVERS = ("local", "eu-1", "eu-2")


@pytest.fixture
async def fleet(tmp_path: Path):
    swarms = {name: fast_swarm() for name in SERVERS}
    home = tmp_path / "home"
    home.mkdir()
    engine = Engine(
        Store(home / "shipbot.db"),
        servers=Servers({name: (lambda s=s: s) for name, s in swarms.items()}),
        home=home,
        vault=Vault.open(home),
        server_apps={"eu-1": ["zpapp"], "eu-2": ["zpapp"]},
        clock=SwarmSteps(*swarms.values()),
    )
    config = ControlConfig(
        admins=[ADMIN],
        notify=[NotifyRoute(platform="console", channel="ops", kinds=["deploys"])],
        pipelines={"max_previews": 2},
    )
    bot = Dispatcher(engine, config)
    folder = tmp_path / "zpapp"
    folder.mkdir()
    (folder / "Dockerfile").write_text("FROM busybox\n")
    (folder / "app.yml").write_text(APP_YML)
    repo = Repo(tmp_path, folder)
    assert result(await say(bot, f"apps add zpapp --git {repo.origin} --ref main", ADMIN)).ok
    assert result(await say(bot, "domain grant zpapp '*.preview.test' --env 'pr-*'", ADMIN)).ok
    secret = ChatRequest("console", ADMIN, "console", "webhook secret zpapp", SECRET)
    assert result(await bot.run(secret)).ok
    yield bot, swarms, repo
    bot.close()


async def test_a_preview_is_built_runs_and_goes_on_the_server_app_yml_names(fleet):
    bot, swarms, repo = fleet
    start = {name: len(s.calls) for name, s in swarms.items()}
    # the pull request's own app.yml asks for eu-2: it cannot move its preview
    doc = yaml.safe_load((repo.work / "app.yml").read_text())
    doc["previews"]["server"] = "eu-2"
    doc["server"] = "eu-2"
    (repo.work / "app.yml").write_text(yaml.safe_dump(doc))
    head = repo.pull_request(7, "a change")
    receiver = Receiver(bot)
    answer = await deliver(
        receiver, "pull_request", github_pull(str(repo.origin), 7, "opened", head)
    )
    assert answer.text == "zpapp: deploying preview pr-7"
    [release] = bot.engine.store.releases("zpapp", "pr-7")
    assert release.status == "live", posted(bot)
    assert swarms["eu-1"].inspect_service("zpapp-pr-7") is not None
    assert "build" in swarms["eu-1"].calls[start["eu-1"] :]
    assert swarms["eu-2"].calls[start["eu-2"] :] == []
    assert swarms["local"].calls[start["local"] :] == []
    assert bot.engine.store.env_server("zpapp", "pr-7") == "eu-1"

    start = {name: len(s.calls) for name, s in swarms.items()}
    closed = await deliver(
        receiver, "pull_request", github_pull(str(repo.origin), 7, "closed", head)
    )
    assert closed.text == "zpapp: closing preview pr-7"
    assert swarms["eu-1"].inspect_service("zpapp-pr-7") is None
    assert "shipbot-zpapp-pr-7" not in swarms["eu-1"].networks
    assert "remove_service" in swarms["eu-1"].calls[start["eu-1"] :]
    assert swarms["eu-2"].calls[start["eu-2"] :] == []
    assert swarms["local"].calls[start["local"] :] == []


async def test_a_preview_on_a_server_not_open_to_the_app_is_refused_first(fleet):
    bot, swarms, repo = fleet
    bot.engine.plane.server_apps = {"eu-2": ("zpapp",)}  # eu-1 closed to it by an admin
    head = repo.pull_request(8, "another")
    start = {name: len(s.calls) for name, s in swarms.items()}
    await deliver(Receiver(bot), "pull_request", github_pull(str(repo.origin), 8, "opened", head))
    refusal = [p for p in posted(bot) if isinstance(p, Failure)][-1]
    assert refusal.message == (
        "zpapp: app.yml puts it on server 'eu-1', which is not open to it; an admin opens it "
        "in shipbot.yml (server_apps: {eu-1: [zpapp]})"
    )
    assert bot.engine.store.releases("zpapp", "pr-8") == []
    assert all(s.calls[start[n] :] == [] for n, s in swarms.items())


def test_the_preview_spec_takes_the_registered_server_never_the_heads():
    registered = parse_app_config(APP_YML).base.previews
    head = parse_app_config("name: zpapp\nbuild: .\nport: 8080\nserver: eu-2\n").base
    assert preview_spec(head, registered, 7).server == "eu-1"
    unset = registered.model_copy(update={"server": None})
    assert preview_spec(head, unset, 7).server is None  # the control plane's own
