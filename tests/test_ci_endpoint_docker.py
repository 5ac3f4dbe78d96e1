"""POST /ci/deploy on its own aiohttp server, the real engine and a loopback registry behind
it: a CI token deploys an image to staging at once, production waits for a person's
approval, and every refusal is answered and audited."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from bot.ci_endpoint import MAX_BODY, add_ci_routes
from commands.dispatch import Dispatcher
from commands.pipelines import create_ci_token, registry_login
from tests import local_registry
from tests.chat import fetch, result, say, task_addresses

pytestmark = pytest.mark.docker

APP_YML = """\
name: {name}
build: .
port: 8080
replicas: 1
healthcheck: {{cmd: ["wget", "-qO-", "http://127.0.0.1:8080/"], interval: 1s, timeout: 2s,
  retries: 3, start_period: 1s}}
stop_grace_period: 1s
environments:
  staging: {{}}
  production: {{approval: true}}
"""


@pytest.fixture(scope="module")
def registry(docker_client, tmp_path_factory):
    with local_registry.with_web_images(docker_client, tmp_path_factory.mktemp("zi")) as found:
        yield found


@pytest.fixture
async def setup(docker_client, tmp_path: Path, made_apps, registry):
    running, _ = registry
    names = [f"zi{uuid.uuid4().hex[:6]}" for _ in range(2)]
    home = tmp_path / "home"
    home.mkdir()
    (home / "shipbot.yml").write_text("admins: [console:alice]\n")
    bot = Dispatcher.open(home)
    for name in names:
        folder = tmp_path / name
        folder.mkdir()
        (folder / "app.yml").write_text(APP_YML.format(name=name))
        assert result(await say(bot, f"apps add {name} --path {folder}")).ok
        made_apps.append(name)
    registry_login(
        bot, registry=running.host, username="zi-ci", password=running.password, app=None, by="t"
    )
    # the pipeline's owner is not alice, who approves its production deploy (four eyes)
    token = create_ci_token(
        bot, name="zi-pipeline", app=names[0], by="console:alice", owner="console:zi-dev"
    )
    app = web.Application()
    add_ci_routes(app, bot)
    async with TestClient(TestServer(app)) as client:
        yield bot, client, names, token
    bot.close()


def audit_rows(bot: Dispatcher) -> list[dict]:
    return bot.engine.store.audit_log(limit=50)


async def test_ci_deploys_to_staging_and_waits_for_approval_in_production(
    setup, registry, docker_client
):
    bot, client, (name, _), token = setup
    running, digests = registry
    image = f"{running.host}/zi/web:v1"
    bearer = {"Authorization": f"Bearer {token}"}

    staging = await client.post(
        "/ci/deploy", json={"app": name, "env": "staging", "image": image}, headers=bearer
    )
    body = await staging.json()
    assert staging.status == 200, body
    assert body["status"] == "live" and body["release"] == "1"
    pinned = f"{running.host}/zi/web@{digests['v1']}"
    assert body["image"] == pinned
    assert [fetch(a) for a in task_addresses(docker_client, f"{name}-staging")] == ["one\n"]

    production = await client.post(
        "/ci/deploy", json={"app": name, "env": "production", "image": image}, headers=bearer
    )
    body = await production.json()
    assert production.status == 202, body
    assert body["status"] == "pending_approval"
    assert docker_client.api.services(filters={"name": f"{name}-production"}) == []
    approved = await say(bot, f"approve {body['approval']}")
    assert result(approved).ok, approved
    assert result(approved).fields["image"] == pinned

    rows = [r for r in audit_rows(bot) if r["user"] == "ci:zi-pipeline"]
    assert {(r["env"], r["result"]) for r in rows} >= {("staging", "ok"), ("production", "pending")}


async def test_ci_refusals_are_answered_and_audited(setup, registry):
    bot, client, (name, other), token = setup
    running, _ = registry
    image = f"{running.host}/zi/web:v1"
    bearer = {"Authorization": f"Bearer {token}"}
    job = {"app": name, "env": "staging", "image": image}

    missing = await client.post("/ci/deploy", json=job)
    assert missing.status == 401
    forged = await client.post(
        "/ci/deploy", json=job, headers={"Authorization": f"Bearer {token[:-2]}xx"}
    )
    assert forged.status == 401
    assert (await forged.json())["message"] == "no valid CI token: send Authorization: Bearer …"

    elsewhere = await client.post("/ci/deploy", json={**job, "app": other}, headers=bearer)
    assert elsewhere.status == 403
    assert (await elsewhere.json())["message"] == f"this token deploys {name} only, not {other}"

    huge = await client.post("/ci/deploy", data=b"{" + b" " * MAX_BODY + b"}", headers=bearer)
    assert huge.status == 413
    bad = await client.post("/ci/deploy", data=b"not json", headers=bearer)
    assert bad.status == 400
    sneaky = await client.post(
        "/ci/deploy", json={**job, "image": f"{image} --break-glass now"}, headers=bearer
    )
    assert sneaky.status == 400
    assert (await sneaky.json())["message"].startswith("image: ")

    gone = await client.post(
        "/ci/deploy", json={**job, "image": f"{running.host}/zi/web:v9"}, headers=bearer
    )
    body = await gone.json()
    assert gone.status == 422 and body["message"].endswith("nothing was changed")

    denied = [r for r in audit_rows(bot) if r["result"] == "denied"]
    details = {r["detail"] for r in denied}
    assert {"no bearer token", "no valid CI token"} <= details
    assert f"this token deploys {name} only, not {other}" in details
    assert all(token not in str(r) for r in audit_rows(bot))
