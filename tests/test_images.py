"""Registry images in the fast tier: reference parsing, whose login a pull uses, what Swarm
is given, approvals bound to the digest, CI tokens kept only as digests."""

from __future__ import annotations

import pytest

from commands.pipelines import (
    CiCaller,
    PipelineError,
    ci_caller,
    create_ci_token,
    deploy_request,
    registry_login,
    revoke_ci_token,
)
from core.deploy.registry import Reference, RegistryError, parse_reference
from core.deploy.verdicts import KEEP_RELEASES
from core.swarm import comparable_image
from tests.chat import failure, result, say
from tests.fast_plane import dispatcher, fake_swarm

DIGEST = "sha256:" + "ab" * 32
HOST = "registry.example.com"
APP_YML = """\
name: {name}
build: .
replicas: 1
environments:
  production: {{approval: true}}
  staging: {{}}
"""


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("registry.example.com/team/api:sha-abc", Reference(f"{HOST}/team/api", "sha-abc", None)),
        (f"{HOST}/team/api@{DIGEST}", Reference(f"{HOST}/team/api", None, DIGEST)),
        (f"{HOST}:5000/api:v1@{DIGEST}", Reference(f"{HOST}:5000/api", "v1", DIGEST)),
        ("team/api", Reference("team/api", None, None)),
    ],
)
def test_references(text, expected):
    assert parse_reference(text) == expected


@pytest.mark.parametrize(
    "text",
    [DIGEST, "ab" * 32, "0123456789ab", "-v", "Team/Api:1", "a b", "api:v1 --break-glass x", ""],
)
def test_not_references(text):
    with pytest.raises(RegistryError, match="is not an image reference"):
        parse_reference(text)


def test_registry_hosts():
    assert parse_reference("team/api:1").registry == "docker.io"
    assert parse_reference("127.0.0.1:5000/zi/web:v1").registry == "127.0.0.1:5000"


@pytest.mark.parametrize(
    ("image", "compared"),
    [
        ("shipbot/api:3@" + DIGEST, "shipbot/api:3"),  # Swarm pinned the tag
        ("shipbot/api:3", "shipbot/api:3"),
        (f"{HOST}/api@{DIGEST}", f"{HOST}/api@{DIGEST}"),  # deployed by digest
        (f"{HOST}:5000/api@{DIGEST}", f"{HOST}:5000/api@{DIGEST}"),
    ],
)
def test_comparable_images(image, compared):
    assert comparable_image(image) == compared


@pytest.fixture
def fake():
    return fake_swarm()


@pytest.fixture
async def bot(tmp_path, fake):
    home = tmp_path / "home"
    home.mkdir()
    bot = dispatcher(home, fake, ["console:alice"])
    for name in ("api", "other"):
        folder = tmp_path / name
        folder.mkdir()
        (folder / "app.yml").write_text(APP_YML.format(name=name))
        assert result(await say(bot, f"apps add {name} --path {folder}")).ok
    await say(bot, "grant console:bob deployer --app api")
    yield bot
    bot.close()


def login(bot, app, given="right-password"):
    registry_login(bot, registry=HOST, username="ci", password=given, app=app, by="t")


async def test_deploy_by_tag_runs_the_digest_with_the_apps_login(bot, fake):
    fake.logins[HOST] = {"username": "ci", "password": "right-password"}
    digest = fake.push(f"{HOST}/team/api:v1")
    login(bot, "api")
    replies = await say(bot, f"deploy api --env staging --image {HOST}/team/api:v1")
    assert result(replies).ok, replies
    pinned = f"{HOST}/team/api@{digest}"
    spec = fake.inspect_service("api-staging")["Spec"]
    assert spec["TaskTemplate"]["ContainerSpec"]["Image"] == pinned
    assert fake.registry_auths == [
        (
            "api-staging",
            {"username": "ci", "password": "right-password", "serveraddress": HOST},
        )
    ]
    release = bot.engine.store.releases("api", "staging")[0]
    assert (release.image, release.source_ref) == (pinned, pinned)
    assert not fake.builds  # nothing was built


async def test_another_apps_login_is_never_used(bot, fake):
    fake.logins[HOST] = {"username": "ci", "password": "right-password"}
    fake.push(f"{HOST}/team/other:v1")
    login(bot, "other")  # other's login only: api asks the registry anonymously
    refused = failure(await say(bot, f"deploy api --env staging --image {HOST}/team/other:v1"))
    assert refused.message.startswith(f"the registry {HOST} wants credentials")
    login(bot, None)  # a host-wide login, used by every app
    fake.logins[HOST] = {"username": "ci", "password": "rotated"}  # since changed
    wrong = failure(await say(bot, f"deploy api --env staging --image {HOST}/team/other:v1"))
    assert wrong.message.startswith(f"the registry {HOST} refused shipbot's credentials")
    login(bot, "api", given="rotated")  # the app's own login wins over the host-wide one
    assert result(await say(bot, f"deploy api --env staging --image {HOST}/team/other:v1")).ok


async def test_a_release_image_of_another_app_is_refused(bot, fake):
    fake.add_image("shipbot/other:1")
    refused = failure(await say(bot, "deploy api --env staging --image shipbot/other:1"))
    assert refused.message.startswith("shipbot/other:1 is a shipbot release image")
    assert fake.inspect_service("api-staging") is None


async def test_a_ref_and_an_image_together_are_refused(bot, fake):
    fake.push(f"{HOST}/team/api:v1")
    refused = failure(await say(bot, f"deploy api v1 --image {HOST}/team/api:v1"))
    assert refused.message == "give a REF or --image, not both: --image names what runs"


async def test_an_approval_covers_the_digest_not_the_tag(bot, fake):
    first = fake.push(f"{HOST}/team/api:v1")
    asked = await say(bot, f"deploy api --image {HOST}/team/api:v1", user="console:bob")
    request = next(r for r in asked if type(r).__name__ == "ApprovalRequest")
    assert any(first in line for line in request.details)
    fake.push(f"{HOST}/team/api:v1")  # CI pushed the same tag again meanwhile
    stale = failure(await say(bot, f"approve {request.id}"))
    assert "changed since requested" in stale.message
    assert fake.inspect_service("api-production") is None

    asked = await say(bot, f"deploy api --image {HOST}/team/api:v1", user="console:bob")
    request = next(r for r in asked if type(r).__name__ == "ApprovalRequest")
    done = await say(bot, f"approve {request.id}")
    assert result(done).ok, done


def test_logins_are_encrypted_and_tokens_kept_as_digests(bot):
    login(bot, "api")
    row = bot.engine.store.registry_login("api", HOST)
    assert row["secret"] != "right-password"
    assert bot.engine.vault.decrypt(row["secret"]) == "right-password"
    assert "secret" not in bot.engine.store.registry_logins()[0]

    token = create_ci_token(bot, name="pipeline", app="api", by="console:alice")
    stored = bot.engine.store.ci_token("pipeline")
    assert token not in str(stored) and stored["app"] == "api"
    assert ci_caller(bot, token) == CiCaller("pipeline", "api")
    assert ci_caller(bot, token + "x") is None
    assert ci_caller(bot, token.replace("pipeline", "other")) is None
    assert ci_caller(bot, "Bearer") is None
    with pytest.raises(PipelineError, match="exists"):
        create_ci_token(bot, name="pipeline", app="api", by="console:alice")
    grants = bot.engine.store.grants("ci:pipeline")
    assert [(g["role"], g["app"], g["env"]) for g in grants] == [("deployer", "api", "*")]
    assert revoke_ci_token(bot, name="pipeline", by="console:alice")
    assert ci_caller(bot, token) is None and bot.engine.store.grants("ci:pipeline") == []


def test_ci_bodies_become_checked_requests():
    caller = CiCaller("pipeline", "api")
    request = deploy_request(caller, {"app": "api", "env": "staging", "image": "r.io/api:v1"})
    assert (request.user, request.text) == (
        "ci:pipeline",
        "deploy api --env staging --image r.io/api:v1",
    )
    with pytest.raises(PipelineError, match="^app: "):
        deploy_request(caller, {"app": "api --break-glass x", "image": "r.io/api:v1"})
    with pytest.raises(PipelineError, match="^env: "):
        deploy_request(caller, {"app": "api", "env": "a b", "image": "r.io/api:v1"})
    with pytest.raises(PipelineError, match="^send a JSON object"):
        deploy_request(caller, ["api"])
    with pytest.raises(PermissionError):
        deploy_request(caller, {"app": "other", "env": "staging", "image": "r.io/api:v1"})


async def test_old_registry_images_are_pruned_unless_a_kept_release_runs_them(bot, fake):
    login(bot, "api")
    fake.logins[HOST] = {"username": "ci", "password": "right-password"}
    tags = [f"{HOST}/team/api:v{i}" for i in range(KEEP_RELEASES + 2)]
    digests = [fake.push(tag) for tag in tags]
    for tag in [tags[0], *tags]:  # v0 twice: release 1 and 2 run the same digest
        assert result(await say(bot, f"deploy api --env staging --image {tag}")).ok
    pulled = {ref for ref in fake.images if "@" in ref}
    pinned = [f"{HOST}/team/api@{digest}" for digest in digests]
    # releases 1-3 (v0, v0, v1) are past the kept ones: their images went
    assert pulled == set(pinned[2:])
