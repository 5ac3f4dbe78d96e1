"""app.yml's ``image:`` in the fast tier: references compared as Docker resolves them,
image ids and images only the engine has refused, app.yml images pinned to the digest the
registry serves to the app's own login (so an approval covers the content), and
`registry login` checked against the registry before it is stored (previews:
tests/test_previews_images.py)."""

from __future__ import annotations

import pytest

from commands.pipelines import PipelineError, registry_login
from core.deploy.registry import canonical
from core.deploy.spec import release_of
from core.errors import DeployError
from tests.chat import failure, result, say
from tests.fast_plane import dispatcher, fake_swarm

HOST = "registry.example.com"
LOGIN = {"username": "ci", "password": "right-password"}
APP_YML = """\
name: {name}
image: {image}
replicas: 1
environments:
  production: {{approval: true}}
  staging: {{}}
"""
ID = "0ee697898f3b"
HINT = (
    "name an image in a registry, by tag or by digest: "
    "registry.example.com/team/api:sha-abc or registry.example.com/team/api@sha256:…"
)


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("busybox", "docker.io/library/busybox"),
        ("library/busybox", "docker.io/library/busybox"),
        ("docker.io/library/busybox", "docker.io/library/busybox"),
        ("index.docker.io/busybox", "docker.io/library/busybox"),
        ("docker.io/shipbot/other", "docker.io/shipbot/other"),
        ("index.docker.io/shipbot/other", "docker.io/shipbot/other"),
        ("127.0.0.1:5000/zi/web", "127.0.0.1:5000/zi/web"),
        ("localhost/web", "localhost/web"),
    ],
)
def test_repositories_compare_as_docker_resolves_them(name, expected):
    assert canonical(name) == expected


@pytest.mark.parametrize(
    ("image", "owner"),
    [
        ("shipbot/other:1", "other"),
        ("docker.io/shipbot/other:1", "other"),
        ("index.docker.io/shipbot/other@sha256:" + "ab" * 32, "other"),
        ("shipbot:1", None),
        ("team/shipbot/other:1", None),
        (f"{HOST}/shipbot/other:1", None),
    ],
)
def test_release_images_under_any_spelling(image, owner):
    assert release_of(image) == owner


@pytest.fixture
def fake():
    swarm = fake_swarm()
    swarm.logins[HOST] = LOGIN
    return swarm


@pytest.fixture
async def bot(tmp_path, fake):
    home = tmp_path / "home"
    home.mkdir()
    bot = dispatcher(home, fake, ["console:alice"])
    await say(bot, "grant console:bob deployer")
    yield bot
    bot.close()


async def add(bot, tmp_path, name: str, image: str) -> None:
    folder = tmp_path / name
    folder.mkdir(exist_ok=True)
    (folder / "app.yml").write_text(APP_YML.format(name=name, image=image))
    if bot.engine.store.get_app(name) is None:
        assert result(await say(bot, f"apps add {name} --path {folder}")).ok


def login(bot, app: str) -> None:
    registry_login(bot, registry=HOST, username="ci", password=LOGIN["password"], app=app, by="t")


def unchanged(bot, fake, name: str) -> None:
    assert fake.inspect_service(f"{name}-staging") is None
    assert bot.engine.store.release_numbers(name) == []
    assert not any(call in fake.calls for call in ("pull", "tag"))


@pytest.mark.parametrize(
    "image", ["shipbot/other:1", "docker.io/shipbot/other:1", "index.docker.io/shipbot/other:1"]
)
async def test_another_apps_release_image_is_refused_under_any_spelling(bot, fake, tmp_path, image):
    fake.add_image("shipbot/other:1")
    await add(bot, tmp_path, "mine", image)
    refused = failure(await say(bot, "deploy mine --env staging"))
    assert refused.message == (
        f"{image} is a shipbot release image; app.yml's `image:` takes an image from a "
        "registry (a release of this app comes back with `rollback`), nothing was changed"
    )
    unchanged(bot, fake, "mine")


@pytest.mark.parametrize("image", [ID, f"sha256:{'0e' * 32}"])
async def test_an_image_id_is_refused(bot, fake, tmp_path, image):
    fake.images[ID] = fake.add_image("somebody/else:1")
    await add(bot, tmp_path, "mine", f'"{image}"')
    refused = failure(await say(bot, "deploy mine --env staging"))
    assert refused.message == f"{image!r} is not an image reference: {HINT}"
    unchanged(bot, fake, "mine")


async def test_an_image_only_the_engine_has_is_refused(bot, fake, tmp_path):
    fake.add_image("web:1")  # on the engine, in no registry
    await add(bot, tmp_path, "mine", "web:1")
    refused = failure(await say(bot, "deploy mine --env staging"))
    assert refused.message == (
        "web:1 is not in the registry docker.io: check the tag or digest CI pushed; "
        "nothing was changed"
    )
    unchanged(bot, fake, "mine")


async def test_another_apps_private_digest_on_the_engine_is_refused(bot, fake, tmp_path):
    digest = fake.push(f"{HOST}/team/a:v1")
    pinned = f"{HOST}/team/a@{digest}"
    await add(bot, tmp_path, "a", pinned)
    login(bot, "a")
    assert result(await say(bot, "deploy a --env staging")).ok
    assert pinned in fake.images  # a's pull left it on the engine

    await add(bot, tmp_path, "b", pinned)
    refused = failure(await say(bot, "deploy b --env staging"))
    assert refused.message == (
        f"the registry {HOST} wants credentials for {pinned} and shipbot has none: an admin "
        f"runs `shipbot registry login {HOST} --user … [--app APP]`; nothing was changed"
    )
    assert fake.inspect_service("b-staging") is None
    assert bot.engine.store.release_numbers("b") == []


async def test_app_yml_image_runs_the_digest_pulled_with_the_apps_login(bot, fake, tmp_path):
    digest = fake.push(f"{HOST}/team/api:v1")
    await add(bot, tmp_path, "api", f"{HOST}/team/api:v1")
    login(bot, "api")  # the fake registry refuses anyone else
    assert result(await say(bot, "deploy api --env staging")).ok
    pinned = f"{HOST}/team/api@{digest}"
    spec = fake.inspect_service("api-staging")["Spec"]
    assert spec["TaskTemplate"]["ContainerSpec"]["Image"] == "shipbot/api:1"  # as a build
    assert fake.images["shipbot/api:1"] == fake.images[pinned] == fake.registry[pinned][1]
    release = bot.engine.store.releases("api", "staging")[0]
    assert (release.image, release.source_ref) == ("shipbot/api:1", pinned)


async def test_an_approval_covers_app_yml_images_digest(bot, fake, tmp_path):
    first = fake.push(f"{HOST}/team/api:latest")
    await add(bot, tmp_path, "api", f"{HOST}/team/api:latest")
    login(bot, "api")
    asked = await say(bot, "deploy api", user="console:bob")
    request = next(r for r in asked if type(r).__name__ == "ApprovalRequest")
    assert any(first in line for line in request.details)
    fake.push(f"{HOST}/team/api:latest")  # a new `latest` meanwhile
    stale = failure(await say(bot, f"approve {request.id}"))
    assert stale.message.startswith(f"request {request.id} changed since requested")
    assert fake.inspect_service("api-production") is None
    assert bot.engine.store.release_numbers("api") == []


async def test_registry_login_is_checked_before_it_is_stored(bot, fake, tmp_path):
    await add(bot, tmp_path, "api", f"{HOST}/team/api:v1")
    with pytest.raises(PipelineError) as wrong:
        registry_login(bot, registry=HOST, username="ci", password="wrong", app="api", by="t")
    assert str(wrong.value) == (
        f"the registry {HOST} refused the login of ci: check the user name and the password "
        f"(or token), then run `shipbot registry login {HOST} --user ci` again; nothing was "
        "stored"
    )
    fake.fail_next(
        1, "check_login", error=DeployError(f"logging in to {HOST}: no answer within 20s")
    )
    with pytest.raises(PipelineError) as slow:
        registry_login(
            bot, registry=HOST, username="ci", password="right-password", app="api", by="t"
        )
    assert str(slow.value) == (
        f"the registry {HOST} did not answer shipbot's login check in time: check that {HOST} "
        f"is up and that the Docker engine reaches it, then run `shipbot registry login {HOST} "
        "--user ci` again; nothing was stored"
    )
    assert bot.engine.store.registry_logins() == []
    rows = bot.engine.store.audit_log(limit=5)
    failed = [r for r in rows if r["command"].startswith("registry login")]
    assert [r["result"] for r in failed] == ["failed", "failed"]
    assert "wrong" not in str(failed) and "right-password" not in str(failed)
