"""POST /ci/deploy in the fast tier: its own aiohttp server, the dispatcher on the fake
swarm behind it. Refusals come before anything runs; a streamed body is bounded too."""

from __future__ import annotations

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from bot.ci_endpoint import MAX_BODY, add_ci_routes
from commands.pipelines import create_ci_token, registry_login
from tests.chat import failure, result, say
from tests.fast_plane import dispatcher, fake_swarm

HOST = "registry.example.com"


@pytest.fixture
async def served(tmp_path):
    fake = fake_swarm()
    home = tmp_path / "home"
    home.mkdir()
    bot = dispatcher(home, fake, ["console:alice"])
    folder = tmp_path / "api"
    folder.mkdir()
    (folder / "app.yml").write_text("name: api\nbuild: .\nenvironments: {staging: {}}\n")
    assert result(await say(bot, f"apps add api --path {folder}")).ok
    registry_login(bot, registry=HOST, username="ci", password="pw-123456", app="api", by="t")
    token = create_ci_token(bot, name="gh", app="api", by="console:alice")
    app = web.Application()
    add_ci_routes(app, bot)
    async with TestClient(TestServer(app)) as client:
        yield bot, fake, client, {"Authorization": f"Bearer {token}"}
    bot.close()


async def test_a_token_deploys_its_app(served):
    bot, fake, client, bearer = served
    digest = fake.push(f"{HOST}/api:v1")
    job = {"app": "api", "env": "staging", "image": f"{HOST}/api:v1"}
    answer = await client.post("/ci/deploy", json=job, headers=bearer)
    body = await answer.json()
    assert answer.status == 200, body
    assert (body["status"], body["release"], body["image"]) == (
        "live",
        "1",
        f"{HOST}/api@{digest}",
    )
    row = bot.engine.store.audit_log("api", limit=1)[0]
    assert (row["user"], row["command"], row["result"]) == (
        "ci:gh",
        f"deploy api --env staging --image {HOST}/api:v1",
        "ok",
    )


async def test_a_streamed_body_is_bounded(served):
    _, fake, client, bearer = served

    async def endless():
        for _ in range(MAX_BODY // 1024 + 2):
            yield b" " * 1024

    answer = await client.post("/ci/deploy", data=endless(), headers=bearer)
    assert answer.status == 413
    assert "create_service" not in fake.calls


async def test_a_missing_image_is_a_failed_deploy_that_changed_nothing(served):
    bot, fake, client, bearer = served
    job = {"app": "api", "env": "staging", "image": f"{HOST}/api:v9"}
    answer = await client.post("/ci/deploy", json=job, headers=bearer)
    body = await answer.json()
    assert answer.status == 422
    assert body["message"] == (
        f"{HOST}/api:v9 is not in the registry {HOST}: check the tag or digest CI pushed; "
        "nothing was changed"
    )
    assert bot.engine.store.release_numbers("api") == []


async def test_a_body_without_env_or_nested_deep_is_a_400_that_changed_nothing(served):
    bot, fake, client, bearer = served
    fake.push(f"{HOST}/api:v1")
    answer = await client.post(
        "/ci/deploy", json={"app": "api", "image": f"{HOST}/api:v1"}, headers=bearer
    )
    assert (answer.status, await answer.json()) == (
        400,
        {
            "status": "bad_request",
            "message": "env: required; name the environment, e.g. staging or production",
        },
    )
    deep = b"[" * 5000 + b"]" * 5000
    answer = await client.post("/ci/deploy", data=deep, headers=bearer)
    assert (answer.status, (await answer.json())["message"]) == (
        400,
        "the JSON nests deeper than 32 levels",
    )
    assert "create_service" not in fake.calls
    assert bot.engine.store.release_numbers("api") == []


async def test_the_ci_tokens_owner_cannot_approve_its_deploy(tmp_path):
    fake = fake_swarm()
    home = tmp_path / "home"
    home.mkdir()
    bot = dispatcher(home, fake, ["console:alice"])
    folder = tmp_path / "api"
    folder.mkdir()
    (folder / "app.yml").write_text(
        "name: api\nbuild: .\nenvironments:\n  production: {approval: {approvers: [deployer]}}\n"
    )
    assert result(await say(bot, f"apps add api --path {folder}")).ok
    registry_login(bot, registry=HOST, username="ci", password="pw-123456", app="api", by="t")
    mine = create_ci_token(bot, name="mine", app="api", by="console:alice", owner="console:carol")
    made = create_ci_token(bot, name="made", app="api", by="console:alice")  # owner: alice
    for user in ("console:carol", "console:bob"):
        assert result(await say(bot, f"grant {user} deployer --app api")).ok
    fake.push(f"{HOST}/api:v1")
    app = web.Application()
    add_ci_routes(app, bot)
    job = {"app": "api", "env": "production", "image": f"{HOST}/api:v1"}
    try:
        async with TestClient(TestServer(app)) as client:
            ids = []
            for token in (mine, made):
                answer = await client.post(
                    "/ci/deploy", json=job, headers={"Authorization": f"Bearer {token}"}
                )
                assert answer.status == 202
                ids.append((await answer.json())["approval"])
        for (owner, token_user), approval in zip(
            [("console:carol", "ci:mine"), ("console:alice", "ci:made")], ids, strict=True
        ):
            refused = failure(await say(bot, f"approve {approval}", owner))
            assert refused.message == (
                f"you own the CI token {token_user} that asked for request {approval}: "
                "someone else approves it (four eyes)"
            )
            assert bot.engine.store.approval(approval)["status"] == "pending"
        assert bot.engine.store.release_numbers("api") == []
        assert result(await say(bot, f"approve {ids[0]}", "console:bob")).ok
        assert bot.engine.store.release_numbers("api") != []
    finally:
        bot.close()
