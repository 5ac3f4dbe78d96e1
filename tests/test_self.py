"""shipbot as its own app, in the fast tier: the root app.yml validates with shipbot's own
schema and becomes a service on a manager with its tokens as Swarm secrets; `self deploy`
is the chat deploy of it; a new bot announces its version once; tokens are read from the
secrets folder."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.self_deploy import announce, beat, health, self_deploy_text
from bot.settings import Settings, load
from commands.notify import Notifier
from commands.replies import Step
from core.appspec import AppConfig, load_app_config
from core.appspec.swarm import SwarmSecret, secret_references
from core.config import NotifyRoute
from core.deploy.registry import parse_reference
from core.errors import AppSpecError
from tests.chat import failure, result, say
from tests.fast_plane import dispatcher, fake_swarm

ROOT = Path(__file__).resolve().parent.parent
HOST = "registry.example.com"


def test_the_root_app_yml_validates():
    spec = load_app_config(ROOT).for_env("production")
    assert spec.name == "shipbot" and spec.replicas == 1
    assert spec.placement.constraints == ["node.role == manager"]
    # every chat's tokens, each optional: the install creates those of the chat it uses
    assert [(s.name, s.target, s.optional) for s in spec.swarm_secrets] == [
        ("shipbot-slack-bot-token", "SLACK_BOT_TOKEN", True),
        ("shipbot-slack-app-token", "SLACK_APP_TOKEN", True),
        ("shipbot-slack-signing-secret", "SLACK_SIGNING_SECRET", True),
        ("shipbot-discord-token", "DISCORD_TOKEN", True),
    ]
    aliases = {field.validation_alias for field in Settings.model_fields.values()}
    assert {s.target for s in spec.swarm_secrets} <= aliases  # files Settings reads
    assert "data:/data" in spec.volumes and spec.healthcheck is not None


def test_an_app_mounts_only_its_own_swarm_secrets():
    with pytest.raises(AppSpecError, match="'shipbot-slack-bot-token' is not api's"):
        AppConfig({"name": "api", "image": "a:1", "swarm_secrets": ["shipbot-slack-bot-token"]})
    with pytest.raises(AppSpecError, match="is not a placement constraint"):
        AppConfig({"name": "api", "image": "a:1", "placement": ["node.role == x; rm"]})


@pytest.fixture
def fake():
    return fake_swarm()


@pytest.fixture
def bot(tmp_path, fake):
    home = tmp_path / "home"
    home.mkdir()
    (home / "shipbot.yml").write_text("admins: [console:root]\n")
    bot = dispatcher(home, fake, ["console:root"])
    # links resolved: /var/run is /run on Debian
    bot.engine.plane.host_paths = ("/var/run/docker.sock", "/run/docker.sock")
    yield bot
    bot.close()


def mounted(name: str, secret_id: str, file: str) -> dict:
    return {
        "SecretID": secret_id,
        "SecretName": name,
        "File": {"Name": file, "UID": "0", "GID": "0", "Mode": 0o444},
    }


def not_mounted(*names: str) -> Step:
    return Step(
        f"optional Swarm secret(s) not found, so not mounted: {', '.join(names)} "
        "(`docker secret create NAME -` on the server and deploy again to mount one)"
    )


async def test_a_discord_only_self_deploy_mounts_its_token_alone(bot, fake):
    assert result(await say(bot, f"apps add shipbot --path {ROOT}", "console:root")).ok
    digest = fake.push(f"{HOST}/shipbot:0.2.0")
    fake.objects[("secret", "shipbot-discord-token")] = "sec9"
    done = await say(bot, self_deploy_text(None, f"{HOST}/shipbot:0.2.0"), "console:root")
    assert result(done).ok, done
    slack = ("shipbot-slack-bot-token", "shipbot-slack-app-token", "shipbot-slack-signing-secret")
    assert done[1] == not_mounted(*slack)
    template = fake.inspect_service("shipbot-production")["Spec"]["TaskTemplate"]
    assert template["Placement"]["Constraints"] == ["node.role==manager"]
    assert template["ContainerSpec"]["Image"] == parse_reference(f"{HOST}/shipbot").pinned(digest)
    assert template["ContainerSpec"]["Secrets"] == [
        mounted("shipbot-discord-token", "sec9", "DISCORD_TOKEN")
    ]
    assert template["ContainerSpec"]["Healthcheck"]["Test"] == ["CMD", "shipbot", "health"]


async def test_a_slack_self_deploy_mounts_the_slack_tokens_made(bot, fake):
    assert result(await say(bot, f"apps add shipbot --path {ROOT}", "console:root")).ok
    fake.push(f"{HOST}/shipbot:0.2.0")
    fake.objects[("secret", "shipbot-slack-bot-token")] = "sec1"
    fake.objects[("secret", "shipbot-slack-app-token")] = "sec2"
    done = await say(bot, self_deploy_text(None, f"{HOST}/shipbot:0.2.0"), "console:root")
    assert result(done).ok, done
    assert done[1] == not_mounted("shipbot-slack-signing-secret", "shipbot-discord-token")
    template = fake.inspect_service("shipbot-production")["Spec"]["TaskTemplate"]
    assert template["ContainerSpec"]["Secrets"] == [
        mounted("shipbot-slack-bot-token", "sec1", "SLACK_BOT_TOKEN"),
        mounted("shipbot-slack-app-token", "sec2", "SLACK_APP_TOKEN"),
    ]


async def test_a_required_secret_missing_refuses_the_deploy_and_an_optional_one_does_not(
    bot, fake, tmp_path
):
    folder = tmp_path / "api"
    folder.mkdir()
    (folder / "app.yml").write_text(
        f"name: api\nimage: {HOST}/api:1\n"
        "swarm_secrets: [api-db, {name: api-sentry, file: SENTRY_DSN, optional: true}]\n"
    )
    fake.push(f"{HOST}/api:1")
    assert result(await say(bot, f"apps add api --path {folder}", "console:root")).ok
    missing = failure(await say(bot, "deploy api", "console:root"))
    assert missing.message == (
        "api: app.yml mounts the Swarm secret api-db, which does not exist: create it first "
        "(printf %s VALUE | docker secret create api-db -); nothing was changed"
    )
    assert bot.engine.store.release_numbers("api") == []
    fake.objects[("secret", "api-db")] = "db1"
    done = await say(bot, "deploy api", "console:root")
    assert result(done).ok and done[1] == not_mounted("api-sentry"), done
    secrets = fake.inspect_service("api-production")["Spec"]["TaskTemplate"]["ContainerSpec"]
    assert secrets["Secrets"] == [mounted("api-db", "db1", "api-db")]


def test_optional_is_true_or_false_and_two_secrets_never_share_a_file():
    base = {"name": "api", "image": "a:1"}
    spec = AppConfig({**base, "swarm_secrets": [{"name": "api-a", "optional": True}]}).base
    assert spec.swarm_secrets == [SwarmSecret(name="api-a", optional=True)]
    assert AppConfig({**base, "swarm_secrets": ["api-a"]}).base.swarm_secrets[0].optional is False
    with pytest.raises(AppSpecError) as loose:
        AppConfig({**base, "swarm_secrets": [{"name": "api-a", "optional": "maybe"}]})
    assert str(loose.value).endswith(
        "swarm_secrets[0].optional: expected true or false, got 'maybe'"
    )
    shared = [
        {"name": "api-a", "file": "TOKEN", "optional": True},
        {"name": "api-b", "file": "TOKEN"},
    ]
    with pytest.raises(AppSpecError) as twice:
        AppConfig({**base, "swarm_secrets": shared})
    assert str(twice.value).endswith(
        "swarm_secrets: api-a and api-b would both be the file /run/secrets/TOKEN: give each "
        "its own `file`"
    )


def test_secret_references_leave_out_an_optional_secret_without_an_id():
    secrets = [
        SwarmSecret(name="api-db"),
        SwarmSecret(name="api-sentry", file="SENTRY_DSN", optional=True),
        SwarmSecret(name="api-mail", optional=True),
    ]
    assert secret_references(secrets, {"api-db": "d1", "api-mail": "m1"}) == [
        mounted("api-db", "d1", "api-db"),
        mounted("api-mail", "m1", "api-mail"),
    ]
    with pytest.raises(KeyError):  # a required secret always has its id (secret_ids)
        secret_references(secrets, {"api-mail": "m1"})


def test_a_new_version_is_announced_once(bot, monkeypatch):
    route = NotifyRoute(platform="slack", channel="ops", kinds=["deploys"])
    bot.notifier = Notifier(bot.engine.store, [route])
    monkeypatch.setenv("SHIPBOT_REVISION", "abc123def4567890")
    assert announce(bot) == "🤖 shipbot 0.1.0 (abc123def456) is up"
    assert announce(bot) is None  # a restart on the same version says nothing
    monkeypatch.setenv("SHIPBOT_REVISION", "fedcba")
    assert announce(bot) == "🤖 shipbot 0.1.0 (fedcba) is up (it was 0.1.0 (abc123def456))"
    queued = bot.engine.store.due_messages("slack", 1e12)
    assert [row["channel"] for row in queued] == ["ops", "ops"]


def test_health_follows_the_heartbeat(tmp_path):
    assert health(tmp_path) == (
        False,
        f"no heartbeat at {tmp_path / 'serve.heartbeat'}: is `shipbot serve` running?",
    )
    beat(tmp_path)
    ok, text = health(tmp_path)
    assert ok and text.startswith("shipbot 0.1.0")
    assert health(tmp_path, max_age=-1)[0] is False


def test_tokens_are_read_from_the_secrets_folder(tmp_path, monkeypatch):
    (tmp_path / "SLACK_BOT_TOKEN").write_text("xoxb-from-a-swarm-secret")
    monkeypatch.setenv("SHIPBOT_SECRETS_DIR", str(tmp_path))
    settings = load(Settings)
    assert settings.slack_bot_token.get_secret_value() == "xoxb-from-a-swarm-secret"
    monkeypatch.setenv("SLACK_BOT_TOKEN", "xoxb-from-the-environment")
    assert load(Settings).slack_bot_token.get_secret_value() == "xoxb-from-the-environment"


async def test_a_secret_in_a_longer_named_apps_space_is_refused(bot, fake, tmp_path):
    for name, extra in (("api", "swarm_secrets: [api-v2-token]\n"), ("api-v2", "")):
        folder = tmp_path / name
        folder.mkdir()
        (folder / "app.yml").write_text(f"name: {name}\nimage: {HOST}/api:1\n{extra}")
        assert result(await say(bot, f"apps add {name} --path {folder}", "console:root")).ok
    refused = failure(await say(bot, "deploy api", "console:root"))
    assert "'api-v2-token', which is app 'api-v2''s name space" in refused.message
