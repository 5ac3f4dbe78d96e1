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
from core.appspec import AppConfig, load_app_config
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
    assert [(s.name, s.target) for s in spec.swarm_secrets] == [
        ("shipbot-slack-bot-token", "SLACK_BOT_TOKEN"),
        ("shipbot-slack-app-token", "SLACK_APP_TOKEN"),
    ]
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


async def test_self_deploy_runs_shipbot_on_a_manager_with_its_secrets(bot, fake):
    assert result(await say(bot, f"apps add shipbot --path {ROOT}", "console:root")).ok
    digest = fake.push(f"{HOST}/shipbot:0.2.0")
    missing = failure(
        await say(bot, self_deploy_text(None, f"{HOST}/shipbot:0.2.0"), "console:root")
    )
    assert "Swarm secret shipbot-slack-bot-token, which does not exist" in missing.message
    assert bot.engine.store.release_numbers("shipbot") == []

    fake.objects[("secret", "shipbot-slack-bot-token")] = "sec1"
    fake.objects[("secret", "shipbot-slack-app-token")] = "sec2"
    text = self_deploy_text(None, f"{HOST}/shipbot:0.2.0")
    done = await say(bot, text, "console:root")
    assert result(done).ok, done
    template = fake.inspect_service("shipbot-production")["Spec"]["TaskTemplate"]
    assert template["Placement"]["Constraints"] == ["node.role==manager"]
    assert template["ContainerSpec"]["Image"] == parse_reference(f"{HOST}/shipbot").pinned(digest)
    assert template["ContainerSpec"]["Secrets"] == [
        {
            "SecretID": "sec1",
            "SecretName": "shipbot-slack-bot-token",
            "File": {"Name": "SLACK_BOT_TOKEN", "UID": "0", "GID": "0", "Mode": 0o444},
        },
        {
            "SecretID": "sec2",
            "SecretName": "shipbot-slack-app-token",
            "File": {"Name": "SLACK_APP_TOKEN", "UID": "0", "GID": "0", "Mode": 0o444},
        },
    ]
    assert template["ContainerSpec"]["Healthcheck"]["Test"] == ["CMD", "shipbot", "health"]


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
