"""Git webhooks without an engine: signatures, payloads, mapping, and the whole receiver
(real store, vault, dispatcher, git) deploying on the in-memory swarm."""

from __future__ import annotations

import asyncio
import hmac
import io
import json
import os
import signal
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web

from bot.webhooks import hook_routes, start_http
from commands.hooks import UNSIGNED, Receiver, plain
from commands.replies import ApprovalRequest, Failure
from commands.request import needs_secret
from core.appspec import parse_app_config
from core.errors import AppSpecError
from core.pipelines.events import PullRequest, Push, Repository, parse
from core.pipelines.repos import repo_key, same_repository
from core.pipelines.signatures import sign, verify
from tests import forge_payloads
from tests.chat import result, say
from tests.fake_slack import FakeSlack
from tests.forge_payloads import (
    ADMIN,
    SECRET,
    audit,
    body_of,
    deliver,
    github_headers,
    github_pull,
    github_push,
    gitlab_push,
    posted,
)
from tests.test_serve import free_port, spawn_cli
from tests.test_slack import SECRET as SLACK_SECRET
from tests.test_slack import signed, slash

BODY = b'{"zen": "Keep it logically awesome."}'


# signatures


def test_github_signature_is_hmac_sha256_of_the_body():
    header = sign("github", SECRET, BODY)["X-Hub-Signature-256"]
    assert header == "sha256=" + hmac.new(SECRET.encode(), BODY, "sha256").hexdigest()
    assert verify("github", SECRET, BODY, header)
    assert not verify("github", SECRET, BODY + b" ", header)
    assert not verify("github", "another-secret-value", BODY, header)
    assert not verify("github", SECRET, BODY, header.removeprefix("sha256="))
    assert not verify("github", SECRET, BODY, None)
    assert not verify("github", SECRET, BODY, "sha256=é")


def test_gitea_signature_is_the_bare_hex_and_gitlab_sends_the_token():
    gitea = sign("gitea", SECRET, BODY)["X-Gitea-Signature"]
    assert verify("gitea", SECRET, BODY, gitea)
    assert not verify("gitea", SECRET, BODY, "sha256=" + gitea)
    assert verify("gitlab", SECRET, BODY, SECRET)
    assert not verify("gitlab", SECRET, BODY, SECRET[:-1])
    assert not verify("gitlab", "", BODY, "")


# payloads


def test_github_push_and_pull_request_payloads():
    push = parse("github", {"x-github-event": "push"}, github_push("/r/o.git", "main", "a" * 40))
    assert push == Push(
        "github",
        Repository("team/app", ("/r/o.git", "/r/o.git"), "/r/o.git"),
        "main",
        "a" * 40,
        "dev",
        logins=("github:dev",),
    )
    tag = github_push("/r/o.git", "main", "a" * 40) | {"ref": "refs/tags/v1"}
    assert parse("github", {"x-github-event": "push"}, tag).branch is None
    pull = parse(
        "github",
        {"x-github-event": "pull_request"},
        github_pull("/r", 7, "synchronize", "b" * 40, fork=True),
    )
    assert isinstance(pull, PullRequest)
    assert (pull.number, pull.action, pull.head_sha, pull.from_fork) == (
        7,
        "update",
        "b" * 40,
        True,
    )
    closed = parse(
        "github", {"x-github-event": "pull_request"}, github_pull("/r", 7, "closed", "b" * 40)
    )
    assert (closed.action, closed.merged, closed.from_fork) == ("close", True, False)
    labeled = parse(
        "github", {"x-github-event": "pull_request"}, github_pull("/r", 7, "labeled", "b" * 40)
    )
    assert labeled.action == "other"


def test_gitlab_payloads():
    push = parse(
        "gitlab", {"x-gitlab-event": "Push Hook"}, gitlab_push("/r/o.git", "dev", "c" * 40)
    )
    assert (push.branch, push.commit, push.who, push.repository.project_id) == (
        "dev",
        "c" * 40,
        "dev",
        "42",
    )
    merge = {
        "object_attributes": {
            "iid": 3,
            "action": "update",
            "last_commit": {"id": "d" * 40},
            "source_project_id": 42,
            "target_project_id": 42,
            "source_branch": "feat",
            "title": "t",
        },
        "project": {"id": 42, "path_with_namespace": "team/app", "git_http_url": "/r/o.git"},
        "user": {"username": "dev"},
    }
    edit = parse("gitlab", {"x-gitlab-event": "Merge Request Hook"}, merge)
    assert (edit.number, edit.action) == (3, "other")  # no oldrev: a title edit, no commits
    merge["object_attributes"]["oldrev"] = "e" * 40
    assert parse("gitlab", {"x-gitlab-event": "Merge Request Hook"}, merge).action == "update"


def test_a_payload_without_what_the_event_needs_is_refused():
    with pytest.raises(Exception, match="the payload has no ref"):
        parse("github", {"x-github-event": "push"}, {"repository": {"clone_url": "/x"}})
    with pytest.raises(Exception, match="not a JSON object"):
        parse("github", {"x-github-event": "push"}, [1])


def test_repository_addresses_compare_as_one_key():
    assert repo_key("https://GitHub.com/Team/App.git") == "github.com/team/app"
    assert repo_key("git@github.com:team/app.git") == "github.com/team/app"
    assert repo_key("ssh://git@github.com:22/team/app") == "github.com/team/app"
    assert repo_key("/srv/git/app.git/") == "file:/srv/git/app"
    assert same_repository("https://github.com/team/app", ("git@github.com:team/app.git",))
    assert not same_repository("https://github.com/team/app", ("https://github.com/team/app2",))
    assert not same_repository("https://github.com/team/app", ("https://gitlab.com/team/app",))


# app.yml


def test_app_yml_pipelines_fields():
    config = parse_app_config(
        "name: a\nimage: x:1\nport: 80\ndeploy_on_push: {branch: main, env: staging}\n"
        "previews: {domain: 'pr-{number}.preview.example.com'}\n"
    )
    assert [(r.branch, r.env) for r in config.base.deploy_on_push] == [("main", "staging")]
    assert config.base.previews.domain == "pr-{number}.preview.example.com"
    assert not config.base.previews.forks
    with pytest.raises(AppSpecError, match=r"previews.domain: expected a host name holding"):
        parse_app_config("name: a\nimage: x:1\npreviews: {domain: preview.example.com}\n")
    with pytest.raises(AppSpecError, match=r"previews.domain: .*is not a hostname"):
        parse_app_config("name: a\nimage: x:1\npreviews: {domain: 'pr-{number}.exa`mple.com'}\n")
    with pytest.raises(AppSpecError, match=r"deploy_on_push\[0\].env"):
        parse_app_config("name: a\nimage: x:1\ndeploy_on_push: {branch: main, env: Prod}\n")


# the receiver on the in-memory swarm (fixtures: tests/forge_payloads.py)

bot, fake, repo = forge_payloads.bot, forge_payloads.fake, forge_payloads.repo


async def test_a_signed_push_deploys_the_branch_at_that_commit(bot, repo, fake):
    receiver = Receiver(bot)
    commit = repo.git("rev-parse", "HEAD").strip()
    answer = await deliver(receiver, "push", github_push(str(repo.origin), "main", commit))
    assert (answer.status, answer.text) == (202, "zpapp: deploying main to staging")
    [release] = bot.engine.store.releases("zpapp", "staging")
    assert (release.status, release.source_ref, release.deployed_by) == (
        "live",
        commit,
        "webhook:zpapp",
    )
    texts = [getattr(p, "text", getattr(p, "title", "")) for p in posted(bot)]
    assert texts[0] == f"github push to main by dev: deploying zpapp (staging) at {commit[:12]}"
    assert any(
        t.startswith("→ release 1 of zpapp (staging) started by webhook:zpapp") for t in texts
    )
    assert texts[-1] == "zpapp release 1 is live on staging"
    assert ("webhook:zpapp", "ok", "zpapp release 1 is live on staging") in audit(bot)


async def test_bad_signature_unknown_repository_and_other_branch_are_refused_or_ignored(
    bot, repo, fake
):
    receiver = Receiver(bot)
    commit = repo.git("rev-parse", "HEAD").strip()
    push = github_push(str(repo.origin), "main", commit)
    bad = await deliver(receiver, "push", push, secret="not-the-secret-at-all")
    assert (bad.status, bad.text) == (401, UNSIGNED)
    elsewhere = await deliver(receiver, "push", github_push("/elsewhere/repo.git", "main", commit))
    assert (elsewhere.status, elsewhere.text) == (
        403,
        "refused: signed for zpapp, but names another repository: nothing was done",
    )
    other = await deliver(receiver, "push", github_push(str(repo.origin), "feature", commit))
    assert other.status == 202
    assert "branch feature is not deployed on push (deploy_on_push: main, release)" in other.text
    unsigned = await receiver.receive("github", {"X-GitHub-Event": "push"}, body_of(push))
    assert (unsigned.status, unsigned.text) == (401, UNSIGNED)
    garbage = b"{not json"
    unreadable = await receiver.receive("github", github_headers("push", garbage), garbage)
    assert unreadable.status == 400
    assert bot.engine.store.releases("zpapp", "staging") == []
    assert fake.services() == []
    assert audit(bot)[-1] == (
        "webhook:github",
        "ignored",
        "branch feature is not deployed on push (deploy_on_push: main, release)",
    )
    everything = [(r["result"], r["detail"]) for r in bot.engine.store.audit_log(None, 50)]
    assert ("refused", "signed for zpapp, but names another repository") in everything
    assert ("refused", "no valid signature: 1 request since the last such row") in everything
    assert any(d.startswith("delivery ") and "unreadable" in d for _, d in everything)


async def test_a_push_to_production_waits_for_approval(bot, repo, fake):
    receiver = Receiver(bot)
    commit = repo.push("release", "ship it")
    answer = await deliver(receiver, "push", github_push(str(repo.origin), "release", commit))
    assert answer.text == "zpapp: deploying release to production"
    assert bot.engine.store.releases("zpapp", "production") == []
    cards = [p for p in posted(bot) if isinstance(p, ApprovalRequest)]
    assert len(cards) == 1 and cards[0].requester == "webhook:zpapp"
    assert f"commit {commit}" in cards[0].details
    assert result(await say(bot, "grant console:bob deployer --app zpapp", ADMIN)).ok
    approved = result(await say(bot, f"approve {cards[0].id}", "console:bob"))
    assert approved.ok, approved
    assert bot.engine.store.releases("zpapp", "production")[0].source_ref == commit


async def test_revoking_the_webhook_user_stops_its_deploys(bot, repo, fake):
    assert result(await say(bot, "revoke webhook:zpapp deployer --app zpapp", ADMIN)).ok
    receiver = Receiver(bot)
    commit = repo.git("rev-parse", "HEAD").strip()
    await deliver(receiver, "push", github_push(str(repo.origin), "main", commit))
    assert bot.engine.store.releases("zpapp", "staging") == []
    refusals = [p for p in posted(bot) if isinstance(p, Failure)]
    assert refusals and "webhook:zpapp may not deploy on zpapp/staging" in refusals[0].message
    assert audit(bot)[-1][:2] == ("webhook:zpapp", "denied")


async def test_webhook_secret_is_sealed_and_never_typed_in_the_channel(bot, repo):
    row = bot.engine.store.webhook("zpapp")
    assert SECRET not in json.dumps(row) and bot.engine.vault.decrypt(row["secret"]) == SECRET
    refused = await say(bot, "webhook secret zpapp", ADMIN)
    assert "needs the value from a prompt or form" in refused[-1].message
    assert SECRET not in json.dumps(
        [r["detail"] + r["command"] for r in bot.engine.store.audit_log(None, 50)]
    )


async def test_a_gitlab_token_delivery(bot, repo, fake):
    receiver = Receiver(bot)
    commit = repo.git("rev-parse", "HEAD").strip()
    body = body_of(gitlab_push(str(repo.origin), "main", commit))
    headers = {"X-Gitlab-Event": "Push Hook", "X-Gitlab-Event-UUID": "7f1c0a2e-1"}
    wrong = await receiver.receive("gitlab", {**headers, "X-Gitlab-Token": "nope"}, body)
    assert wrong.status == 401
    right = await receiver.receive("gitlab", {**headers, "X-Gitlab-Token": SECRET}, body)
    await receiver.drain()
    assert right.status == 202
    assert bot.engine.store.releases("zpapp", "staging")[0].source_ref == commit


async def test_the_http_endpoint_bounds_bodies_and_shares_its_server(bot, repo, fake):
    receiver = Receiver(bot)
    seen: list[str] = []

    def other_routes(app: web.Application) -> None:  # a route set of another room (CI)
        async def hello(request: web.Request) -> web.Response:
            seen.append(request.path)
            return web.Response(text="ci")

        app.router.add_post("/ci/deploy", hello)

    runner = await start_http("127.0.0.1", 0, [hook_routes(receiver), other_routes])
    base = f"http://127.0.0.1:{runner.addresses[0][1]}"
    commit = repo.git("rev-parse", "HEAD").strip()
    body = body_of(github_push(str(repo.origin), "main", commit))
    headers = github_headers("push", body)
    try:
        async with aiohttp.ClientSession() as session:
            async with session.post(f"{base}/hooks/github", data=body, headers=headers) as answer:
                assert answer.status == 202
                assert await answer.json() == {"result": "zpapp: deploying main to staging"}
            huge = io.BytesIO(b"{" + b" " * (bot.config.pipelines.max_body_bytes + 1) + b"}")
            async with session.post(f"{base}/hooks/github", data=huge, headers=headers) as answer:
                assert answer.status == 413
            async with session.post(f"{base}/hooks/bitbucket", data=body) as answer:
                assert answer.status == 404
            async with session.post(f"{base}/ci/deploy") as answer:
                assert await answer.text() == "ci"
        await receiver.drain()
    finally:
        await runner.cleanup()
    assert bot.engine.store.releases("zpapp", "staging")[0].source_ref == commit
    assert seen == ["/ci/deploy"]
    refused = [r["detail"] for r in bot.engine.store.audit_log(None, 50)]
    assert "body over 1048576 bytes: 1 request since the last such row" in refused


async def test_shipbot_serve_answers_webhooks_beside_slacks_http_mode(tmp_path: Path):
    fake_slack = await FakeSlack().start()
    home = tmp_path / "home"
    home.mkdir()
    (home / "shipbot.yml").write_text("admins: [slack:UADMIN]\n")
    port = free_port()
    env = {
        **os.environ,
        "SHIPBOT_HOME": str(home),
        "SLACK_BOT_TOKEN": "xoxb-test",
        "SLACK_SIGNING_SECRET": SLACK_SECRET,
        "SLACK_API_URL": fake_slack.base_url,
        "SHIPBOT_HTTP_HOST": "127.0.0.1",
        "SHIPBOT_HTTP_PORT": str(port),
        "SHIPBOT_WEBHOOKS": "1",
        "SHIPBOT_CI_ENDPOINT": "1",
    }
    proc = await spawn_cli(env)
    body = body_of(github_push("https://github.com/team/nobody.git", "main", "a" * 40))
    answers = []
    try:
        async with aiohttp.ClientSession() as session:
            for _ in range(600):  # the listener comes up seconds after the process
                try:
                    async with session.post(
                        f"http://127.0.0.1:{port}/hooks/github",
                        data=body,
                        headers={"X-GitHub-Event": "push", **sign("github", SECRET, body)},
                    ) as answer:
                        answers.append((answer.status, await answer.json()))
                        break
                except aiohttp.ClientConnectionError:
                    await asyncio.sleep(0.1)
            slack_body = slash("/ship", "whoami", "UADMIN")
            async with session.post(
                f"http://127.0.0.1:{port}/slack/events",
                data=slack_body.encode(),
                headers=signed(slack_body),
            ) as answer:
                assert answer.status == 200
            # the CI endpoint on the same server refuses a token it never issued
            async with session.post(
                f"http://127.0.0.1:{port}/ci/deploy",
                json={"app": "zpapp", "env": "staging", "image": "registry.test/zp:1"},
                headers={"Authorization": "Bearer not-a-token"},
            ) as answer:
                assert answer.status == 401
    finally:
        proc.send_signal(signal.SIGTERM)
        code = await asyncio.wait_for(proc.wait(), 10)
        stderr = (await proc.stderr.read()).decode()
        await fake_slack.stop()
    assert code == 0 and "Traceback" not in stderr, stderr
    assert answers == [(401, {"result": UNSIGNED})]


def test_names_from_a_payload_cannot_carry_chat_markup():
    assert plain("fix <!channel> & <@U1>\x1b[31m") == "fix !channel  @U1[31m"
    assert plain("") == "?"
    assert len(plain("x" * 500)) == 80


def test_webhook_secret_and_token_are_asked_for_outside_the_channel():
    assert needs_secret("webhook secret api") == "webhook secret of api (not echoed): "
    assert needs_secret("webhook token api") == "webhook forge token of api (not echoed): "


async def test_an_expired_approval_a_webhook_asked_for_queues_nothing_undeliverable(
    bot, repo, fake
):
    receiver = Receiver(bot)
    commit = repo.push("release", "ship it")
    await deliver(receiver, "push", github_push(str(repo.origin), "release", commit))
    bot.engine.store.db.execute("UPDATE approvals SET expires_at = 0")
    [(platform, channel, notice)] = bot.expire_due()
    assert (platform, channel) == ("webhook", "webhook")
    assert "expired without approval" in notice.text
    assert bot.engine.store.due_messages("webhook", 1e12) == []
    assert audit(bot)[-1][1] == "expired"
