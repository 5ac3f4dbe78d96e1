"""Preview environments without an engine: the preview spec builder, and pull requests
opened, pushed to, refused and closed through the receiver on the in-memory swarm."""

from __future__ import annotations

import pytest
import yaml

from commands.dispatch import ChatRequest
from commands.hooks import Receiver
from commands.replies import Failure
from core.appspec import parse_app_config
from core.config import DnsConfig, PipelinesConfig
from core.pipelines import PipelineError
from core.pipelines.events import PullRequest, Repository
from core.pipelines.forge import api_url, comment_request
from core.pipelines.preview import preview_spec, pull_refspec
from tests import forge_payloads
from tests.chat import result, say
from tests.fake_cloudflare import FakeCloudflare
from tests.forge_payloads import (
    ADMIN,
    FakeForge,
    audit,
    body_of,
    deliver,
    github_headers,
    github_pull,
    posted,
)

bot, fake, repo = forge_payloads.bot, forge_payloads.fake, forge_payloads.repo
FORK_REFUSAL = (
    "pull request from a fork (or from a repository the forge no longer names): "
    "previews.forks is off in app.yml"
)

HEAD_YML = """\
name: api
build: .
port: 8080
replicas: 6
domains: [api.example.com]
env: {GREETING: hi}
databases: [maindb]
links: [billing]
approval: true
volumes: ["cache:/cache"]
swarm_secrets: [api-stripe-live]
placement: ["node.role == manager"]
environments:
  production: {server: eu-1}
"""


def test_a_preview_runs_the_heads_app_yml_within_the_registered_limits():
    registered = parse_app_config(
        "name: api\nimage: x:1\npreviews: {domain: 'pr-{number}.preview.example.com', "
        "env: {STRIPE_KEY: sk_test_1}}\n"
    ).base.previews
    spec = preview_spec(parse_app_config(HEAD_YML).base, registered, 7)
    assert spec.domains == ["pr-7.preview.example.com"]
    assert spec.env == {"GREETING": "hi", "STRIPE_KEY": "sk_test_1"}
    assert (spec.replicas, spec.databases, spec.approval, spec.https) == (1, [], None, True)
    assert spec.links == []  # a preview reaches no other app's network
    assert spec.volumes == ["cache:/cache"]  # becomes api-pr-7-cache
    # the app's Swarm secrets, its servers and its placement stay production's own
    assert (spec.swarm_secrets, spec.server, spec.placement.constraints) == ([], None, [])


def test_a_preview_gets_no_host_path_and_needs_a_port():
    previews = parse_app_config(
        "name: api\nimage: x:1\npreviews: {domain: 'pr-{number}.p.test'}\n"
    ).base.previews
    mounted = parse_app_config("name: api\nimage: x:1\nport: 80\nvolumes: ['/etc:/host']\n")
    with pytest.raises(PipelineError, match="bind-mounts /etc:/host: previews get named volumes"):
        preview_spec(mounted.base, previews, 7)
    borrowed = parse_app_config("name: api\nimage: shipbot/billing:3\nport: 80\n")
    with pytest.raises(PipelineError, match="runs shipbot/billing:3, another app's release"):
        preview_spec(borrowed.base, previews, 7)
    with pytest.raises(PipelineError, match="sets no port"):
        preview_spec(parse_app_config("name: api\nimage: x:1\n").base, previews, 7)


def test_pull_request_heads_and_comment_requests_per_forge():
    assert pull_refspec("github", 7) == "+refs/pull/7/head:refs/shipbot/pull/7"
    assert pull_refspec("gitlab", 7) == "+refs/merge-requests/7/head:refs/shipbot/pull/7"
    repo = Repository(
        "team/app",
        ("https://git.example.com/team/app.git",),
        "https://git.example.com/team/app",
        "42",
    )
    pull = PullRequest("github", repo, 7, "open", "opened", "a" * 40, "f", False, "t", "dev")
    config = PipelinesConfig()
    github = comment_request(api_url(config, pull), pull, "tok", "hi")
    assert github.url == "https://api.github.com/repos/team/app/issues/7/comments"
    assert github.headers["Authorization"] == "Bearer tok" and github.body == {"body": "hi"}
    gitea = PullRequest("gitea", repo, 7, "open", "opened", "a" * 40, "f", False, "t", "dev")
    request = comment_request(api_url(config, gitea), gitea, "tok", "hi")
    assert request.url == "https://git.example.com/api/v1/repos/team/app/issues/7/comments"
    assert request.headers["Authorization"] == "token tok"
    gitlab = PullRequest("gitlab", repo, 7, "open", "open", "a" * 40, "f", False, "t", "dev")
    request = comment_request(api_url(config, gitlab), gitlab, "tok", "hi")
    assert request.url == "https://git.example.com/api/v4/projects/42/merge_requests/7/notes"
    assert request.headers == {"PRIVATE-TOKEN": "tok"}


@pytest.fixture
async def forge(bot):
    server = FakeForge()
    url = await server.start()
    bot.config = bot.config.model_copy(
        update={"pipelines": PipelinesConfig(max_previews=1, forges={"github": {"api_url": url}})}
    )
    yield server
    await server.stop()


def env_of(fake, service: str) -> dict[str, str]:
    spec = fake.inspect_service(service)["Spec"]["TaskTemplate"]["ContainerSpec"]
    return dict(item.split("=", 1) for item in spec.get("Env", []))


async def test_a_pull_request_gets_a_preview_updated_on_push_and_removed_on_close(
    bot, repo, fake, forge
):
    # the app has a secret and a chat variable: a preview must not see either
    replies = await bot.run(
        ChatRequest(
            "console",
            ADMIN,
            "console",
            "secret set zpapp API_TOKEN --env staging",
            "prod-secret-123",
        )
    )
    assert result(replies).ok
    assert result(await say(bot, "env set zpapp PLAIN=prod-only --env staging", ADMIN)).ok
    token = await bot.run(
        ChatRequest("console", ADMIN, "console", "webhook token zpapp", "forge-token-1")
    )
    assert result(token).ok
    # the pull request's app.yml asks for a production domain, a database and more replicas
    doc = yaml.safe_load((repo.work / "app.yml").read_text())
    doc.update(domains=["zpapp.example.com"], replicas=5, volumes=["data:/data"])
    (repo.work / "app.yml").write_text(yaml.safe_dump(doc))
    head = repo.pull_request(7, "a fork's change")
    receiver = Receiver(bot)

    answer = await deliver(
        receiver, "pull_request", github_pull(str(repo.origin), 7, "opened", head)
    )
    assert answer.text == "zpapp: deploying preview pr-7"
    [release] = bot.engine.store.releases("zpapp", "pr-7")
    assert (release.status, release.source_ref) == ("live", head)
    service = fake.inspect_service("zpapp-pr-7")["Spec"]
    assert service["Mode"]["Replicated"]["Replicas"] == 1
    assert service["Labels"]["traefik.http.routers.zpapp-pr-7.rule"] == "Host(`pr-7.preview.test`)"
    assert not any("zpapp.example.com" in value for value in service["Labels"].values())
    assert env_of(fake, "zpapp-pr-7") == {"GREETING": "hi", "PREVIEW": "yes"}
    assert forge.comments == [
        {
            "path": "/repos/team/app/issues/7/comments",
            "authorization": "Bearer forge-token-1",
            "body": f"🚀 Preview `pr-7` of `{head[:12]}` is live: http://pr-7.preview.test/",
        }
    ]
    live = [p for p in posted(bot) if getattr(p, "title", "") == "zpapp release 1 is live on pr-7"]
    assert live[0].fields["url"] == "http://pr-7.preview.test/"  # in the app's channel
    row = bot.engine.store.preview("zpapp", 7)
    assert (row["status"], row["head_sha"], row["domain"]) == ("live", head, "pr-7.preview.test")

    again = repo.pull_request(7, "a second push")
    await deliver(receiver, "pull_request", github_pull(str(repo.origin), 7, "synchronize", again))
    assert [r.source_ref for r in bot.engine.store.releases("zpapp", "pr-7")] == [again, head]
    assert len(forge.comments) == 2

    # a second pull request finds the limit (max_previews: 1) and says so
    other = repo.pull_request(8, "another")
    await deliver(receiver, "pull_request", github_pull(str(repo.origin), 8, "opened", other))
    assert fake.inspect_service("zpapp-pr-8") is None
    refusal = [p for p in posted(bot) if isinstance(p, Failure)][-1]
    assert (
        "1 previews are open, the most shipbot.yml allows (pipelines.max_previews: 1)"
        in refusal.message
    )

    assert "zpapp-pr-7-data" in fake.volumes
    assert "shipbot-zpapp-pr-7" in fake.networks  # its own network, gone with it
    closed = await deliver(
        receiver, "pull_request", github_pull(str(repo.origin), 7, "closed", again)
    )
    assert closed.text == "zpapp: closing preview pr-7"
    assert fake.inspect_service("zpapp-pr-7") is None
    assert "zpapp-pr-7-data" not in fake.volumes
    assert "shipbot-zpapp-pr-7" not in fake.networks
    assert bot.engine.store.releases("zpapp", "pr-7") == []
    assert bot.engine.store.preview("zpapp", 7) is None
    left = bot.engine.store.db.execute(
        "SELECT count(*) FROM deployments WHERE app = 'zpapp' AND env = 'pr-7'"
    ).fetchone()[0]
    assert left == 0
    assert ("webhook:zpapp", "ok", "preview pr-7 of zpapp removed") in audit(bot)


async def test_a_pull_request_from_a_fork_is_refused_unless_previews_forks(bot, repo, fake):
    head = repo.pull_request(9, "from mallory")
    receiver = Receiver(bot)
    payload = github_pull(str(repo.origin), 9, "opened", head, fork=True)
    answer = await deliver(receiver, "pull_request", payload)
    assert answer.text == f"zpapp: refused: {FORK_REFUSAL}"
    assert fake.inspect_service("zpapp-pr-9") is None
    assert bot.engine.store.preview("zpapp", 9) is None
    assert audit(bot)[-1] == ("webhook:github", "refused", FORK_REFUSAL)


async def test_a_pull_requests_app_yml_cannot_mount_the_host(bot, repo, fake):
    doc = yaml.safe_load((repo.work / "app.yml").read_text())
    doc["volumes"] = ["/var/run/docker.sock:/var/run/docker.sock"]
    (repo.work / "app.yml").write_text(yaml.safe_dump(doc))
    head = repo.pull_request(5, "take the host")
    await deliver(Receiver(bot), "pull_request", github_pull(str(repo.origin), 5, "opened", head))
    assert fake.services() == []
    refusal = [p for p in posted(bot) if isinstance(p, Failure)][-1]
    assert "bind-mounts /var/run/docker.sock" in refusal.message
    assert audit(bot)[-1][:2] == ("webhook:zpapp", "failed")


async def test_a_preview_gets_its_dns_record_and_its_close_deletes_it(bot, repo, fake, monkeypatch):
    cloudflare = await FakeCloudflare(
        zones={"preview.test": "0a1b2c3d4e5f"}, tokens={"cf-token": {"preview.test"}}
    ).start()
    monkeypatch.setenv("CLOUDFLARE_API_TOKEN", "cf-token")
    dns = DnsConfig(zone="preview.test", addresses=["203.0.113.10"], api_url=cloudflare.base_url)
    bot.config = bot.config.model_copy(update={"dns": dns})
    receiver = Receiver(bot)
    try:
        head = repo.pull_request(7, "change")
        await deliver(receiver, "pull_request", github_pull(str(repo.origin), 7, "opened", head))
        record = [
            (r["type"], r["content"], r["comment"]) for r in cloudflare.of("pr-7.preview.test")
        ]
        assert record == [("A", "203.0.113.10", "managed by shipbot: zpapp/pr-7")]
        await deliver(receiver, "pull_request", github_pull(str(repo.origin), 7, "closed", head))
        assert cloudflare.of("pr-7.preview.test") == []
        done = [
            p for p in posted(bot) if getattr(p, "title", "") == "preview pr-7 of zpapp removed"
        ]
        assert "DNS record A pr-7.preview.test → 203.0.113.10" in done[0].details
    finally:
        await cloudflare.stop()


async def test_events_of_one_pull_request_run_one_at_a_time_and_end_at_its_newest_head(
    bot, repo, fake
):
    receiver = Receiver(bot)

    async def send(action: str, sha: str) -> None:
        body = body_of(github_pull(str(repo.origin), 3, action, sha))
        headers = github_headers("pull_request", body)
        assert (await receiver.receive("github", headers, body)).status == 202

    first = repo.pull_request(3, "first")
    await send("opened", first)
    second = repo.pull_request(3, "second")  # force-pushed: the first head leaves the forge
    await send("synchronize", second)
    await receiver.drain()  # the second waited for the first, whichever head that one found
    releases = bot.engine.store.releases("zpapp", "pr-3")
    assert releases[0].source_ref == second and releases[0].status == "live"
    assert {r.source_ref for r in releases} <= {first, second}
    assert not [p for p in posted(bot) if isinstance(p, Failure)]
    assert receiver.serial == {} and receiver.waiting == {}


async def test_a_preview_goes_at_close_even_after_app_yml_dropped_previews(bot, repo, fake):
    receiver = Receiver(bot)
    head = repo.pull_request(4, "change")
    await deliver(receiver, "pull_request", github_pull(str(repo.origin), 4, "opened", head))
    assert fake.inspect_service("zpapp-pr-4") is not None
    doc = yaml.safe_load((repo.work / "app.yml").read_text())
    del doc["previews"]
    (repo.work / "app.yml").write_text(yaml.safe_dump(doc))
    repo.push("main", "no more previews")
    later = repo.pull_request(6, "another")
    opened = await deliver(
        receiver, "pull_request", github_pull(str(repo.origin), 6, "opened", later)
    )
    assert opened.text == "zpapp: ignored: app.yml at the registered ref has no previews:"
    closed = await deliver(
        receiver, "pull_request", github_pull(str(repo.origin), 4, "closed", head)
    )
    assert closed.text == "zpapp: closing preview pr-4"
    assert fake.inspect_service("zpapp-pr-4") is None
    assert bot.engine.store.previews("zpapp") == []
