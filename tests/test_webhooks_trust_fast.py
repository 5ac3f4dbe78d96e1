"""What a push alone may not do through a webhook (issue 20): replay a delivery, deploy an
old one at today's head, speak unsigned, sink the parser, tell which repositories are
registered, or approve its own production deploy. The receiver runs on the in-memory
swarm with the real store, vault, dispatcher and git (fixtures: tests/forge_payloads.py)."""

from __future__ import annotations

import json

import aiohttp

from bot.webhooks import hook_routes, start_http
from commands.dispatch import ChatRequest
from commands.hooks import UNSIGNED, Receiver
from commands.replies import ApprovalRequest
from core.config import PipelinesConfig
from core.pipelines.events import parse
from tests import forge_payloads
from tests.chat import failure, result, say, table
from tests.forge_payloads import (
    ADMIN,
    SECRET,
    audit,
    body_of,
    deliver,
    github_headers,
    github_pull,
    github_push,
    posted,
)

bot, fake, repo = forge_payloads.bot, forge_payloads.fake, forge_payloads.repo
DAY = 86_400.0


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


async def test_a_replayed_delivery_deploys_nothing_again(bot, repo, fake):
    clock = Clock()
    receiver = Receiver(bot, clock)
    commit = repo.git("rev-parse", "HEAD").strip()
    payload = github_push(str(repo.origin), "main", commit)
    first = await deliver(receiver, "push", payload, delivery="d-1")
    assert (first.status, first.text) == (202, "zpapp: deploying main to staging")
    assert len(bot.engine.store.releases("zpapp", "staging")) == 1

    clock.now += 7 * DAY  # kept at least a week
    same = await deliver(receiver, "push", payload, delivery="d-1")
    assert (same.status, same.text) == (
        200,
        "already handled: delivery d-1; nothing was done again",
    )
    # the delivery header is not signed: a new id on the same signed bytes is the same delivery
    renamed = await deliver(receiver, "push", payload, delivery="d-2")
    assert renamed.text == "already handled: delivery d-2; nothing was done again"
    # a changed body under the old signature is refused by the signature
    body = body_of(github_push(str(repo.origin), "main", commit, pusher="mallory"))
    headers = github_headers("push", body_of(payload), delivery="d-1")
    assert (await receiver.receive("github", headers, body)).status == 401
    await receiver.drain()
    assert len(bot.engine.store.releases("zpapp", "staging")) == 1
    assert [s["Spec"]["Labels"]["shipbot.release"] for s in fake.services()] == ["1"]


async def test_an_old_delivery_is_superseded_by_the_branch_head(bot, repo, fake):
    receiver = Receiver(bot)
    old = repo.push("main", "first change")
    new = repo.push("main", "second change")
    late = await deliver(receiver, "push", github_push(str(repo.origin), "main", old))
    assert late.text == (
        f"zpapp: ignored: superseded by {new}: main has moved on since {old[:12]}, "
        "so nothing was deployed"
    )
    assert bot.engine.store.releases("zpapp", "staging") == [] and fake.services() == []
    current = await deliver(receiver, "push", github_push(str(repo.origin), "main", new))
    assert current.status == 202
    [release] = bot.engine.store.releases("zpapp", "staging")
    assert release.source_ref == new


async def test_the_audit_of_an_accepted_delivery_names_its_id_commit_and_pusher(bot, repo, fake):
    receiver = Receiver(bot)
    commit = repo.push("main", "audited")
    await deliver(receiver, "push", github_push(str(repo.origin), "main", commit), delivery="d-7")
    [row] = [r for r in bot.engine.store.audit_log("zpapp", 50) if r["result"] == "accepted"]
    assert (row["user"], row["env"], row["command"], row["detail"]) == (
        "webhook:github",
        "staging",
        f"github push main {commit} (delivery d-7)",
        f"deploying {commit} to staging, pushed by github:dev",
    )


async def test_unproved_requests_get_one_answer_whatever_they_name_and_a_counted_audit(
    bot, repo, fake
):
    clock = Clock()
    receiver = Receiver(bot, clock)
    runner = await start_http("127.0.0.1", 0, [hook_routes(receiver)])
    url = f"http://127.0.0.1:{runner.addresses[0][1]}/hooks/github"
    commit = repo.git("rev-parse", "HEAD").strip()
    known = body_of(github_push(str(repo.origin), "main", commit))
    unknown = body_of(github_push("https://github.com/team/nobody.git", "main", commit))
    junk = b"[" * 300 + b"]" * 300
    before = len(bot.engine.store.audit_log(None, 500))
    answers = []
    try:
        async with aiohttp.ClientSession() as session:
            for body, secret in [(known, "wrong-secret-000"), (unknown, "wrong-secret-000")] * 10:
                headers = github_headers("push", body, secret)
                async with session.post(url, data=body, headers=headers) as answer:
                    answers.append((answer.status, await answer.json()))
            for body in (known, unknown, junk):  # no signature at all
                headers = {"X-GitHub-Event": "push", "X-GitHub-Delivery": "x"}
                async with session.post(url, data=body, headers=headers) as answer:
                    answers.append((answer.status, await answer.json()))
            clock.now += 61
            async with session.post(url, data=junk) as answer:
                answers.append((answer.status, await answer.json()))
    finally:
        await runner.cleanup()
    assert set(map(json.dumps, answers)) == {json.dumps([401, {"result": UNSIGNED}])}
    rows = bot.engine.store.audit_log(None, 500)[
        : len(bot.engine.store.audit_log(None, 500)) - before
    ]
    assert [(r["user"], r["result"], r["app"], r["detail"]) for r in reversed(rows)] == [
        (
            "webhook:github",
            "refused",
            None,
            "no valid signature: 1 request since the last such row",
        ),
        (
            "webhook:github",
            "refused",
            None,
            "no valid signature: 23 requests since the last such row",
        ),
    ]
    assert fake.services() == []


async def test_a_deeply_nested_signed_body_is_a_400(bot, repo, fake):
    receiver = Receiver(bot)
    runner = await start_http("127.0.0.1", 0, [hook_routes(receiver)])
    url = f"http://127.0.0.1:{runner.addresses[0][1]}/hooks/github"
    deep = b'{"a":' * 100_000 + b"1" + b"}" * 100_000  # 600 KB
    try:
        async with aiohttp.ClientSession() as session:
            signed = github_headers("push", deep)
            async with session.post(url, data=deep, headers=signed) as answer:
                assert answer.status == 400
                assert await answer.json() == {
                    "result": "unreadable delivery: the JSON nests deeper than 32 levels"
                }
    finally:
        await runner.cleanup()
    assert fake.services() == []


def test_a_pull_request_whose_head_repository_is_null_is_a_fork():
    headers = {"x-github-event": "pull_request"}
    gone = parse("github", headers, github_pull("/r", 7, "opened", "b" * 40, gone=True))
    same = parse("github", headers, github_pull("/r", 7, "opened", "b" * 40))
    assert (gone.from_fork, same.from_fork) == (True, False)
    merge = {
        "object_attributes": {"iid": 3, "action": "open", "last_commit": {"id": "d" * 40}},
        "project": {"id": 42, "git_http_url": "/r/o.git"},
    }
    assert parse("gitlab", {"x-gitlab-event": "Merge Request Hook"}, merge).from_fork


async def test_a_refused_forks_commit_never_goes_live_once_its_head_repo_is_null(bot, repo, fake):
    receiver = Receiver(bot)
    head = repo.pull_request(9, "from mallory, whose fork is gone")
    answer = await deliver(
        receiver, "pull_request", github_pull(str(repo.origin), 9, "synchronize", head, gone=True)
    )
    assert answer.text.startswith("zpapp: refused: pull request from a fork (or from a repo")
    assert fake.services() == [] and bot.engine.store.preview("zpapp", 9) is None


async def test_the_pusher_cannot_approve_their_own_push(bot, repo, fake):
    receiver = Receiver(bot)
    commit = repo.push("release", "mallory's change")
    payload = github_push(str(repo.origin), "release", commit, pusher="Mallory")
    await deliver(receiver, "push", payload)
    [card] = [p for p in posted(bot) if isinstance(p, ApprovalRequest)]
    for user in ("console:mallory", "console:bob"):
        assert result(await say(bot, f"grant {user} deployer --app zpapp", ADMIN)).ok
    linked = await say(bot, "people link console:mallory github:mallory", ADMIN)
    assert result(linked).title == "console:mallory is github:mallory on the forge"
    assert table(await say(bot, "people", ADMIN)).rows[0][:2] == (
        "console:mallory",
        "github:mallory",
    )

    refused = failure(await say(bot, f"approve {card.id}", "console:mallory"))
    assert refused.message == (
        f"you pushed this commit ({commit[:12]}): someone else approves request {card.id} "
        "(four eyes)"
    )
    row = bot.engine.store.approval(card.id)
    assert (row["status"], json.loads(row["approved_by"])) == ("pending", [])
    assert bot.engine.store.releases("zpapp", "production") == []
    [last] = bot.engine.store.audit_log(None, 1)
    assert (last["user"], last["command"], last["result"], last["detail"]) == (
        "console:mallory",
        f"approve {card.id}",
        "denied",
        refused.message,
    )

    assert result(await say(bot, f"approve {card.id}", "console:bob")).ok
    assert bot.engine.store.releases("zpapp", "production")[0].source_ref == commit


async def test_previews_are_capped_per_app_and_a_refused_one_is_recorded(bot, repo, fake, tmp_path):
    bot.config = bot.config.model_copy(
        update={"pipelines": PipelinesConfig(max_previews=2, max_previews_per_app=1)}
    )
    folder = _app_folder(tmp_path, "zpother")
    yml = folder / "app.yml"  # its previews on a domain of its own, granted to it
    yml.write_text(yml.read_text().replace("preview.test", "other.test"))
    other = forge_payloads.Repo(tmp_path, folder)
    assert result(await say(bot, f"apps add zpother --git {other.origin} --ref main", ADMIN)).ok
    grant = "domain grant zpother '*.other.test' --env 'pr-*'"
    assert result(await say(bot, grant, ADMIN)).ok
    secret = ChatRequest("console", ADMIN, "console", "webhook secret zpother", SECRET)
    assert result(await bot.run(secret)).ok
    receiver = Receiver(bot)

    first = repo.pull_request(7, "one")
    await deliver(receiver, "pull_request", github_pull(str(repo.origin), 7, "opened", first))
    second = repo.pull_request(8, "two")
    await deliver(receiver, "pull_request", github_pull(str(repo.origin), 8, "opened", second))
    theirs = other.pull_request(3, "theirs")
    await deliver(receiver, "pull_request", github_pull(str(other.origin), 3, "opened", theirs))

    statuses = {(r["app"], r["number"]): r["status"] for r in bot.engine.store.previews()}
    assert statuses == {("zpapp", 7): "live", ("zpapp", 8): "refused", ("zpother", 3): "live"}
    assert fake.inspect_service("zpapp-pr-8") is None
    assert fake.inspect_service("zpother-pr-3") is not None
    assert audit(bot)[-1][1:] == (
        "failed",
        "1 previews of zpapp are open, the most shipbot.yml allows one app "
        "(pipelines.max_previews_per_app: 1): close one of them, or an admin raises the "
        "limit; preview refused",
    )


async def test_a_preview_its_deploy_never_started_is_recorded_refused(bot, repo, fake):
    assert result(await say(bot, "revoke webhook:zpapp deployer --app zpapp", ADMIN)).ok
    head = repo.pull_request(5, "no grant")
    await deliver(Receiver(bot), "pull_request", github_pull(str(repo.origin), 5, "opened", head))
    assert bot.engine.store.preview("zpapp", 5)["status"] == "refused"
    assert fake.services() == []


def _app_folder(root, name: str):
    folder = root / name
    folder.mkdir()
    (folder / "Dockerfile").write_text("FROM busybox\n")
    (folder / "app.yml").write_text(forge_payloads.APP_YML.format(name=name))
    return folder
