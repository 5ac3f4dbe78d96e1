"""Git webhooks on the real engine: a signed GitHub push to the local endpoint deploys the
app at that commit from a local bare repository, once: the same delivery again deploys
nothing; a bad signature, another repository and another branch are refused or ignored,
and audited, and change nothing."""

from __future__ import annotations

import shutil
import uuid
from pathlib import Path

import aiohttp
import pytest

from bot.webhooks import hook_routes, start_http
from commands.dispatch import ChatRequest, Dispatcher
from commands.hooks import Receiver
from tests.chat import fetch, result, say, task_addresses
from tests.forge_payloads import Repo, body_of, github_headers, github_push

pytestmark = pytest.mark.docker

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "hello"
ADMIN = "console:alice"
SECRET = "zp-webhook-secret-1"


async def post(
    base: str, payload: dict, secret: str = SECRET, delivery: str = ""
) -> tuple[int, str]:
    body = body_of(payload)
    headers = github_headers("push", body, secret, delivery)
    async with (
        aiohttp.ClientSession() as session,
        session.post(f"{base}/hooks/github", data=body, headers=headers) as answer,
    ):
        return answer.status, (await answer.json())["result"]


async def test_a_signed_push_deploys_that_commit_and_the_rest_is_refused(
    tmp_path, docker_client, made_apps
):
    name = f"zp{uuid.uuid4().hex[:7]}"
    made_apps.append(name)
    folder = tmp_path / name
    shutil.copytree(EXAMPLE, folder)
    app_yml = (folder / "app.yml").read_text().replace("name: hello", f"name: {name}")
    app_yml = app_yml.replace("replicas: 2", "replicas: 1")
    (folder / "app.yml").write_text(app_yml + "deploy_on_push: {branch: main, env: staging}\n")
    repo = Repo(tmp_path, folder)
    home = tmp_path / "home"
    home.mkdir()
    (home / "shipbot.yml").write_text(f"admins: [{ADMIN}]\n")
    bot = Dispatcher.open(home)
    receiver = Receiver(bot)
    runner = await start_http("127.0.0.1", 0, [hook_routes(receiver)])
    base = f"http://127.0.0.1:{runner.addresses[0][1]}"
    try:
        assert result(await say(bot, f"apps add {name} --git {repo.origin} --ref main", ADMIN)).ok
        secret = ChatRequest("console", ADMIN, "console", f"webhook secret {name}", SECRET)
        assert result(await bot.run(secret)).ok

        (folder / "www" / "index.html").write_text("pushed by zp\n")
        commit = repo.push("main", "a change")
        push = github_push(str(repo.origin), "main", commit)
        assert await post(base, push, delivery=f"{name}-1") == (
            202,
            f"{name}: deploying main to staging",
        )
        await receiver.drain()
        # the same delivery again (a replay, or the forge's redelivery) deploys nothing
        assert await post(base, push, delivery=f"{name}-1") == (
            200,
            f"already handled: delivery {name}-1; nothing was done again",
        )
        bad = await post(base, github_push(str(repo.origin), "main", commit), "wrong-secret-00")
        unknown = await post(base, github_push(str(tmp_path / "other.git"), "main", commit))
        other = await post(base, github_push(str(repo.origin), "feature", commit))
        await receiver.drain()

        assert bad[0] == 401 and unknown[0] == 403 and other[0] == 202
        [release] = bot.engine.store.releases(name, "staging")
        assert (release.status, release.source_ref, release.deployed_by) == (
            "live",
            commit,
            f"webhook:{name}",
        )
        service = docker_client.api.inspect_service(f"{name}-staging")
        assert service["Spec"]["Labels"]["shipbot.release"] == "1"
        [address] = task_addresses(docker_client, f"{name}-staging")
        assert fetch(address) == "pushed by zp\n"
        assert docker_client.api.services(filters={"name": f"{name}-production"}) == []

        rows = [(r["user"], r["result"], r["detail"]) for r in bot.engine.store.audit_log(None, 50)]
        assert (f"webhook:{name}", "ok", f"{name} release 1 is live on staging") in rows
        unproved = (
            "webhook:github",
            "refused",
            "no valid signature: 1 request since the last such row",
        )
        assert unproved in rows
        assert (
            "webhook:github",
            "refused",
            f"signed for {name}, but names another repository",
        ) in rows
        assert (
            "webhook:github",
            "ignored",
            "branch feature is not deployed on push (deploy_on_push: main)",
        ) in rows
    finally:
        await runner.cleanup()
        bot.close()
