"""What the webhook tests need of a forge: a repository with a bare origin (and the
``refs/pull/N/head`` a forge publishes), payloads shaped as GitHub, GitLab and Gitea send
them, and a fake forge API on loopback that records the comments it is sent."""

from __future__ import annotations

import json
import subprocess
import uuid
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from commands.dispatch import ChatRequest, Dispatcher
from commands.hooks import Answer, Receiver
from commands.replies import Reply, decode
from core.config import ControlConfig, NotifyRoute
from core.engine import Engine
from core.pipelines.signatures import sign
from core.secrets import Vault
from core.store import Store
from core.swarm.servers import Servers
from core.swarm.testing import FakeSwarm
from tests.chat import result, say
from tests.clock import SwarmSteps
from tests.fake_plane import fast_swarm

ADMIN = "console:alice"
SECRET = "s3cret-webhook-value"


class Repo:
    """A work tree pushing to a bare origin, as a team's repository would."""

    def __init__(self, root: Path, folder: Path) -> None:
        self.origin = root / f"{folder.name}-origin.git"
        self.work = folder
        self.git("init", "-q", "-b", "main", cwd=folder)
        self.git("add", ".")
        self.git("commit", "-qm", "first")
        subprocess.run(["git", "init", "-q", "--bare", str(self.origin)], check=True)
        self.git("remote", "add", "origin", str(self.origin))
        self.git("push", "-q", "origin", "main")

    def git(self, *args: str, cwd: Path | None = None) -> str:
        base = ["git", "-c", "user.name=t", "-c", "user.email=t@t", "-C", str(cwd or self.work)]
        return subprocess.run([*base, *args], check=True, capture_output=True, text=True).stdout

    def push(self, branch: str, message: str) -> str:
        self.git("checkout", "-q", "-B", branch)
        self.git("add", "-A")
        self.git("commit", "-q", "--allow-empty", "-m", message)
        self.git("push", "-q", "-f", "origin", branch)
        return self.git("rev-parse", "HEAD").strip()

    def pull_request(self, number: int, message: str) -> str:
        """A commit only at ``refs/pull/N/head`` of origin, as a fork's pull request is."""
        self.git("checkout", "-q", "--detach")
        self.git("add", "-A")
        self.git("commit", "-q", "--allow-empty", "-m", message)
        commit = self.git("rev-parse", "HEAD").strip()
        self.git("push", "-q", "-f", "origin", f"HEAD:refs/pull/{number}/head")
        self.git("checkout", "-q", "main")
        return commit


def github_push(origin: str, branch: str, commit: str, pusher: str = "dev") -> dict[str, Any]:
    return {
        "ref": f"refs/heads/{branch}",
        "before": "1" * 40,
        "after": commit,
        "deleted": False,
        "repository": {"full_name": "team/app", "clone_url": origin, "html_url": origin},
        "pusher": {"name": pusher},
        "sender": {"login": pusher},
    }


def github_pull(
    origin: str, number: int, action: str, sha: str, fork: bool = False, gone: bool = False
) -> dict[str, Any]:
    """``fork``: the head is mallory's; ``gone``: the head repository is null, as the forge
    sends once a fork was deleted."""
    head_repo = None if gone else {"full_name": "mallory/app" if fork else "team/app"}
    return {
        "action": action,
        "number": number,
        "pull_request": {
            "number": number,
            "title": f"change {number}",
            "user": {"login": "dev"},
            "head": {"sha": sha, "ref": f"feature-{number}", "repo": head_repo},
            "base": {"ref": "main", "repo": {"full_name": "team/app"}},
            "merged": action == "closed",
        },
        "repository": {"full_name": "team/app", "clone_url": origin, "html_url": origin},
    }


def gitlab_push(origin: str, branch: str, commit: str) -> dict[str, Any]:
    return {
        "object_kind": "push",
        "ref": f"refs/heads/{branch}",
        "after": commit,
        "user_username": "dev",
        "project": {"id": 42, "path_with_namespace": "team/app", "git_http_url": origin},
    }


def body_of(payload: dict[str, Any]) -> bytes:
    return json.dumps(payload).encode()


class FakeForge:
    """A forge's comment API on loopback: records each POST's path, headers and JSON."""

    def __init__(self) -> None:
        self.comments: list[dict[str, Any]] = []
        self.runner: web.AppRunner | None = None
        self.url = ""

    async def _comment(self, request: web.Request) -> web.Response:
        self.comments.append(
            {
                "path": request.path,
                "authorization": request.headers.get("Authorization", ""),
                "body": (await request.json())["body"],
            }
        )
        return web.json_response({"id": len(self.comments)}, status=201)

    async def start(self) -> str:
        app = web.Application()
        app.router.add_post("/{tail:.*}", self._comment)
        self.runner = web.AppRunner(app)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        port = self.runner.addresses[0][1]
        self.url = f"http://127.0.0.1:{port}"
        return self.url

    async def stop(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()


# the receiver on the in-memory swarm: fixtures the fast modules bind by name

APP_YML = """\
name: {name}
build: .
port: 8080
env: {{GREETING: hi}}
deploy_on_push: [{{branch: main, env: staging}}, {{branch: release, env: production}}]
previews: {{domain: "pr-{{number}}.preview.test", https: false, env: {{PREVIEW: "yes"}}}}
environments:
  staging: {{replicas: 1}}
  production: {{approval: {{approvers: [deployer]}}}}
"""


@pytest.fixture
def fake() -> FakeSwarm:
    return fast_swarm()


@pytest.fixture
async def bot(tmp_path: Path, fake: FakeSwarm) -> Dispatcher:
    home = tmp_path / "home"
    home.mkdir()
    engine = Engine(
        Store(home / "shipbot.db"),
        servers=Servers({"local": lambda: fake}),
        home=home,
        vault=Vault.open(home),
        clock=SwarmSteps(fake),
    )
    config = ControlConfig(
        admins=[ADMIN],
        notify=[NotifyRoute(platform="console", channel="ops", kinds=["deploys"])],
        pipelines={"max_previews": 1},
    )
    dispatcher = Dispatcher(engine, config)
    yield dispatcher
    dispatcher.close()


@pytest.fixture
async def repo(tmp_path: Path, bot: Dispatcher) -> Repo:
    folder = tmp_path / "zpapp"
    folder.mkdir()
    (folder / "Dockerfile").write_text("FROM busybox\n")
    (folder / "app.yml").write_text(APP_YML.format(name="zpapp"))
    repo = Repo(tmp_path, folder)
    assert result(await say(bot, f"apps add zpapp --git {repo.origin} --ref main", ADMIN)).ok
    grant = "domain grant zpapp '*.preview.test' --env 'pr-*'"
    assert result(await say(bot, grant, ADMIN)).ok
    replies = await bot.run(
        ChatRequest("console", ADMIN, "console", "webhook secret zpapp", SECRET)
    )
    assert result(replies).ok, replies
    return repo


def posted(bot: Dispatcher) -> list[Reply]:
    return [decode(row["payload"]) for row in bot.engine.store.due_messages("console", 1e12)]


def audit(bot: Dispatcher) -> list[tuple[str, str, str]]:
    return [
        (r["user"], r["result"], r["detail"])
        for r in reversed(bot.engine.store.audit_log("zpapp", 50))
    ]


def github_headers(event: str, body: bytes, secret: str = SECRET, delivery: str = "") -> dict:
    """What GitHub sends with ``body``: the event, a delivery id (new unless given), the
    signature."""
    return {
        "X-GitHub-Event": event,
        "X-GitHub-Delivery": delivery or str(uuid.uuid4()),
        **sign("github", secret, body),
    }


async def deliver(
    receiver: Receiver,
    event: str,
    payload: dict[str, Any],
    secret: str = SECRET,
    delivery: str = "",
) -> Answer:
    body = body_of(payload)
    answer = await receiver.receive("github", github_headers(event, body, secret, delivery), body)
    await receiver.drain()
    return answer
