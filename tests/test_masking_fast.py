"""Masking is no oracle: a deployer of one app environment who types a value and reads
it back (`env set`, then `env list`; `run … -- echo`) learns nothing about secrets they may
not read. Registry logins (host-wide or the app's own) and other apps' and environments'
secrets are never in the masking set; the secrets of the app environment itself (readable
through `run`) are. Through the real dispatcher on the fake swarm."""

from __future__ import annotations

import pytest

from commands.dispatch import ChatRequest
from commands.pipelines import registry_login
from core.secrets import MASK, Vault, secret_values
from core.store import Store
from tests.chat import logs, result, say, table
from tests.fast_plane import dispatcher, fake_swarm

ADMIN = "console:alice"
DEV = "console:dev"  # deployer of mine, nothing else
HOST = "registry.example.com"
APP_YML = "name: {name}\nimage: {name}:1\nenvironments:\n  staging: {{}}\n"
HOST_WIDE = "host-wide-registry-pw"
MINES_LOGIN = "mines-own-registry-pw"
OTHERS_SECRET = "others-api-token-77"
PRODUCTIONS_SECRET = "mines-production-token"
STAGINGS_SECRET = "mines-staging-token-9"


@pytest.fixture
async def bot(tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    swarm = fake_swarm("mine:1")
    bot = dispatcher(home, swarm, [ADMIN])
    bot.swarm = swarm  # type: ignore[attr-defined]
    for name in ("mine", "other"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "app.yml").write_text(APP_YML.format(name=name))
        assert result(await say(bot, f"apps add {name} --path {tmp_path / name}")).ok
    assert result(await say(bot, f"grant {DEV} deployer --app mine")).ok
    registry_login(bot, registry=HOST, username="ci", password=HOST_WIDE, app=None, by="t")
    registry_login(bot, registry=HOST, username="ci", password=MINES_LOGIN, app="mine", by="t")
    for app, env, value in (
        ("other", "production", OTHERS_SECRET),
        ("mine", "production", PRODUCTIONS_SECRET),
        ("mine", "staging", STAGINGS_SECRET),
    ):
        text = f"secret set {app} TOKEN --env {env}"
        assert result(await bot.run(ChatRequest("console", ADMIN, "c", text, value))).ok
    yield bot
    bot.close()


async def shown_back(bot, value: str) -> str:
    """What `env list` shows DEV for a value DEV set in mine's staging."""
    assert result(await say(bot, f"env set mine GUESS={value} --env staging", DEV)).ok
    rows = {
        row[0]: row[1] for row in table(await say(bot, "env list mine --env staging", DEV)).rows
    }
    return rows["GUESS"]


async def test_a_right_guess_shows_the_same_as_a_wrong_one(bot):
    wrong = "not-any-secret-at-all"
    assert await shown_back(bot, wrong) == wrong
    # the registry logins: host-wide (which no deployer may see) and mine's own
    assert await shown_back(bot, HOST_WIDE) == HOST_WIDE
    assert await shown_back(bot, MINES_LOGIN) == MINES_LOGIN
    # another app's secret, and mine's production secret seen from staging
    assert await shown_back(bot, OTHERS_SECRET) == OTHERS_SECRET
    assert await shown_back(bot, PRODUCTIONS_SECRET) == PRODUCTIONS_SECRET
    # what mine's staging deployers can read anyway stays masked wherever it shows
    assert await shown_back(bot, STAGINGS_SECRET) == MASK
    assert await shown_back(bot, f"https://ci:{HOST_WIDE}@{HOST}/x") == f"https://{MASK}@{HOST}/x"


async def test_the_masking_set_of_an_app_environment_is_its_own_secrets(bot):
    assert bot.engine.secret_values("mine", "staging") == [STAGINGS_SECRET]
    assert bot.engine.secret_values("mine", None) == [PRODUCTIONS_SECRET]
    assert bot.engine.secret_values(None, None) == []


async def test_run_echoes_a_registry_login_as_it_echoes_anything(bot):
    assert result(await say(bot, "deploy mine --env staging")).ok
    bot.swarm.job_handler = lambda argv, env: (0, [argv[-1]])
    for guess in ("not-any-secret-at-all", HOST_WIDE, MINES_LOGIN, PRODUCTIONS_SECRET):
        replies = await say(bot, f"run mine --env staging -- echo {guess}", DEV)
        assert logs(replies) == [guess] and result(replies).ok
    assert logs(await say(bot, f"run mine --env staging -- echo {STAGINGS_SECRET}", DEV)) == [MASK]


def test_the_mask_set_is_one_apps_secrets_in_one_environment(tmp_path):
    """``secret_values``: what replies, the guard, alerts and release jobs all mask."""
    store, vault = Store(tmp_path / "shipbot.db"), Vault.open(tmp_path)
    for app, env, key, value, secret in (
        ("web", "production", "TOKEN", "tok-prod", True),
        ("web", "production", "MODE", "plain-value", False),
        ("web", "staging", "TOKEN", "tok-staging", True),
        ("api", "production", "TOKEN", "tok-api", True),
    ):
        stored = vault.encrypt(value) if secret else value
        store.set_variable(
            app=app, env=env, key=key, value=stored, secret=secret, updated_by="console:alice"
        )
    try:
        assert secret_values(store, vault, "web", "production") == ["tok-prod"]
        assert secret_values(store, vault, "web", None) == ["tok-prod"]  # the default env
        assert secret_values(store, vault, "web", "staging") == ["tok-staging"]
        assert secret_values(store, vault, None, "production") == []  # about no app
    finally:
        store.close()
