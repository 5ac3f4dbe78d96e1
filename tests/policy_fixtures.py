"""A git app whose policy the tests widen by pushing to its registered branch: a bare origin,
the real dispatcher on the in-memory swarm, a deployer who can push, an admin who accepts."""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import pytest
import yaml

from commands.dispatch import ChatRequest, Dispatcher
from commands.hooks import Answer, Receiver
from commands.replies import Reply
from core.appspec import deep_merge
from core.config import ControlConfig, NotifyRoute
from core.engine import Engine
from core.secrets import Vault
from core.store import Store
from core.swarm.servers import Servers
from core.swarm.testing import FakeSwarm
from tests.chat import result, say
from tests.forge_payloads import SECRET, Repo, deliver, github_pull, github_push

ADMIN = "console:alice"
DEPLOYER = "console:mallory"  # deployer on zpol only, and may push to its repository
APP = "zpol"
BASE: dict[str, Any] = {
    "name": APP,
    "build": ".",
    "port": 8080,
    "deploy_on_push": [{"branch": "main", "env": "qa"}],
    "previews": {"domain": "pr-{number}.preview.test", "https": False},
    "environments": {
        "staging": {"approval": {"required": 2, "approvers": ["admin"], "expires": "30m"}},
        "qa": {},
    },
}


def write(repo: Repo, override: dict[str, Any]) -> None:
    text = yaml.safe_dump(deep_merge(BASE, override), sort_keys=False)
    (repo.work / "app.yml").write_text(text)


@pytest.fixture
async def pbot(tmp_path: Path, fake: FakeSwarm) -> Dispatcher:
    home = tmp_path / "home"
    home.mkdir()
    engine = Engine(
        Store(home / "shipbot.db"),
        servers=Servers({"local": lambda: fake}),
        home=home,
        vault=Vault.open(home),
        host_paths=["/srv"],
    )
    route = NotifyRoute(platform="console", channel="ops", kinds=["deploys", "alerts"])
    dispatcher = Dispatcher(engine, ControlConfig(admins=[ADMIN], notify=[route]))
    yield dispatcher
    dispatcher.close()


@pytest.fixture
async def prepo(tmp_path: Path, pbot: Dispatcher, fake: FakeSwarm) -> Repo:
    folder = tmp_path / APP
    folder.mkdir()
    (folder / "Dockerfile").write_text("FROM busybox\n")
    (folder / "app.yml").write_text(yaml.safe_dump(BASE, sort_keys=False))
    repo = Repo(tmp_path, folder)
    assert result(await say(pbot, f"apps add {APP} --git {repo.origin} --ref main", ADMIN)).ok
    replies = await pbot.run(
        ChatRequest("console", ADMIN, "console", f"webhook secret {APP}", SECRET)
    )
    assert result(replies).ok, replies
    assert result(await say(pbot, f"grant {DEPLOYER} deployer --app {APP}", ADMIN)).ok
    # previews' names are the domain grants' business (granted here), their settings policy's
    for zone in ("preview.test", "elsewhere.test"):
        grant = f"domain grant {APP} '*.{zone}' --env 'pr-*'"
        assert result(await say(pbot, grant, ADMIN)).ok
    for name in (f"{APP}-token", f"{APP}-db"):
        fake.objects[("secret", name)] = f"id-{name}"
    return repo


ACTS = itertools.count(1)


async def act(bot: Dispatcher, repo: Repo, action: str) -> tuple[list[Reply], Answer | None]:
    """``action``: chat text the deployer types, or ``push BRANCH`` / ``pull N`` /
    ``fork N`` delivered as a signed webhook."""
    verb, _, arg = action.partition(" ")
    if verb == "push":
        commit = repo.push(arg, f"push {next(ACTS)} to {arg}")  # each act a delivery of its own
        repo.git("checkout", "-q", "main")
        receiver = Receiver(bot)
        return [], await deliver(receiver, "push", github_push(str(repo.origin), arg, commit))
    if verb in ("pull", "fork"):
        commit = repo.pull_request(int(arg), f"pull request {arg}, push {next(ACTS)}")
        payload = github_pull(str(repo.origin), int(arg), "opened", commit, fork=verb == "fork")
        return [], await deliver(Receiver(bot), "pull_request", payload)
    return await say(bot, action, DEPLOYER), None


def policy_audit(bot: Dispatcher) -> list[dict[str, Any]]:
    """Rows of `policy accept`, newest first, but the one `apps add` wrote."""
    rows = bot.engine.store.audit_log(APP, 200)
    return [r for r in rows if r["command"].startswith("policy") and "apps add" not in r["detail"]]
