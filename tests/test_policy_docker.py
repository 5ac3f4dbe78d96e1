"""Issue 20's items 1 and 6 (the Swarm-secret half) on the real engine with a real origin:
a deployer who can push to her app's registered branch cannot lift production's approval,
nor give staging production's Swarm secret; an admin's `policy accept` can."""

from __future__ import annotations

import contextlib
from pathlib import Path

import docker.errors
import pytest

from commands.dispatch import Dispatcher
from commands.replies import ApprovalRequest
from tests.chat import failure, remove_apps, result, say
from tests.test_trust_docker import ADMIN, MALLORY, Repo, app_folder, edit_yml, home, unique

pytestmark = pytest.mark.docker
home = home  # the fixture: shipbot.yml names ADMIN


@pytest.fixture
def prod_secret(docker_client):
    """A Swarm secret only production may mount; removed after the test's services."""
    made: list[str] = []
    yield made
    remove_apps(docker_client, [name.removesuffix("-db") for name in made])
    for name in made:
        with contextlib.suppress(docker.errors.NotFound):
            docker_client.api.remove_secret(name)


async def test_a_push_lifts_no_approval_and_leaks_no_secret_until_an_admin_accepts(
    tmp_path: Path, home: Path, docker_client, prod_secret
):
    mine = unique("pol")
    secret = f"{mine}-db"
    prod_secret.append(secret)
    docker_client.api.create_secret(secret, b"production-only")
    folder = app_folder(tmp_path, mine)
    production = {"approval": {"approvers": ["admin"]}, "swarm_secrets": [secret]}
    edit_yml(folder, replicas=1, environments={"production": production, "staging": {}})
    repo = Repo(tmp_path, folder)
    bot = Dispatcher.open(home)
    assert result(await say(bot, f"apps add {mine} --git {repo.origin} --ref main", ADMIN)).ok
    assert result(await say(bot, f"grant {MALLORY} deployer --app {mine}", ADMIN)).ok
    asked = await say(bot, f"deploy {mine} --env production", MALLORY)
    [card] = [r for r in asked if isinstance(r, ApprovalRequest)]
    assert result(await say(bot, f"approve {card.id}", ADMIN)).ok
    service = f"{mine}-production"
    version = docker_client.api.inspect_service(service)["Version"]["Index"]

    # item 1: the push deletes production's approval on the registered branch
    edit_yml(repo.work, environments={"production": {"swarm_secrets": [secret]}, "staging": {}})
    repo.push("main", "no approval on production")
    refused = failure(await say(bot, f"deploy {mine} --env production", MALLORY))
    assert (
        'environments.production.approval: {"approvers": ["admin"], "expires": "30m00s", '
        '"required": 1} → none (widens)' in refused.message
    )
    assert f"`policy accept {mine} --env production`" in refused.message
    assert docker_client.api.inspect_service(service)["Version"]["Index"] == version
    assert len(bot.engine.store.releases(mine, "production")) == 1

    # item 6: staging names production's Swarm secret, on a branch
    leak = {"production": {"swarm_secrets": [secret]}, "staging": {"swarm_secrets": [secret]}}
    edit_yml(repo.work, environments=leak)
    repo.push("leak", "production's secret in staging")
    refused = failure(await say(bot, f"deploy {mine} leak --env staging", MALLORY))
    assert f"environments.staging.swarm_secrets: none → {secret} (widens)" in refused.message
    assert f"`policy diff {mine} leak`" in refused.message
    assert docker_client.api.services(filters={"name": f"{mine}-staging"}) == []
    repo.git("checkout", "-q", "main")

    # the admin accepts what main proposes: production deploys at once, with no approval
    accepted = result(await say(bot, f"policy accept {mine}", ADMIN))
    assert "environments.production.approval: " in accepted.title
    rows = [r for r in bot.engine.store.audit_log(mine, 50) if r["command"].startswith("policy")]
    registered, accepting = rows[1], rows[0]  # newest first
    assert registered["detail"].startswith("accepted with `apps add` at ")
    assert len(rows) == 2 and accepting["user"] == ADMIN
    assert "environments.production.approval: " in accepting["detail"]
    replies = await say(bot, f"deploy {mine} --env production", MALLORY)
    assert not any(isinstance(r, ApprovalRequest) for r in replies)
    assert result(replies).ok, replies
    assert docker_client.api.inspect_service(service)["Version"]["Index"] > version
    # what main accepted gives staging no secret: the branch stays refused
    assert (
        "(widens)" in failure(await say(bot, f"deploy {mine} leak --env staging", MALLORY)).message
    )
    bot.close()
