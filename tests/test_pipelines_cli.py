"""`shipbot registry …` and `shipbot ci token …` as an admin runs them on the host: the
secret goes in through stdin and comes out once, and neither is ever listed."""

from __future__ import annotations

from pathlib import Path

import pytest

from commands.dispatch import Dispatcher
from commands.pipelines import PipelineError, ci_caller, create_ci_token, registry_login
from tests.chat import result, say
from tests.cli_runner import ashipbot
from tests.fast_plane import dispatcher, fake_swarm


async def test_logins_and_tokens_from_the_host(tmp_path: Path):
    (tmp_path / "shipbot.yml").write_text("admins: [console:ops]\n")
    app = tmp_path / "api"
    app.mkdir()
    (app / "app.yml").write_text("name: api\nimage: api:1\n")
    bot = Dispatcher.open(tmp_path)
    assert result(await say(bot, f"apps add api --path {app}", "console:ops")).ok
    bot.close()

    login = await ashipbot(
        "registry",
        "login",
        "ghcr.io",
        "--user",
        "ci",
        "--app",
        "api",
        home=tmp_path,
        given="s3cret-registry-token\n",
    )
    # checked against ghcr.io through the engine first: from here it is refused (a wrong
    # token, or no way out), and nothing is stored
    assert (login.returncode, login.stdout) == (1, "") and "ghcr.io" in login.stderr
    assert (await ashipbot("registry", "list", home=tmp_path)).stdout == ""
    fake = fake_swarm()
    bot = dispatcher(tmp_path, fake, ["console:ops"])  # a registry that takes the token
    password = "s3cret-registry-token"
    registry_login(bot, registry="ghcr.io", username="ci", password=password, app="api", by="t")
    bot.close()
    unknown = await ashipbot(
        "registry", "login", "ghcr.io", "--user", "ci", "--app", "nope", home=tmp_path, given="x\n"
    )
    assert unknown.returncode == 1 and "no app named nope" in unknown.stderr
    listed = await ashipbot("registry", "list", home=tmp_path)
    assert listed.stdout == "ghcr.io  ci  app=api\n"

    made = await ashipbot("ci", "token", "create", "github", "--app", "api", home=tmp_path)
    assert made.returncode == 0, made.stderr
    token = made.stdout.strip()
    assert token.startswith("sbci_github_")
    every = await ashipbot(
        "ci", "token", "create", "deployall", "--all-apps", "--owner", "slack:U42", home=tmp_path
    )
    assert every.returncode == 0, every.stderr
    tokens = await ashipbot("ci", "token", "list", home=tmp_path)
    [all_apps, one_app] = tokens.stdout.splitlines()
    assert all_apps.startswith("deployall  scope=all-apps  owner=slack:U42  by=cli:")
    assert one_app.startswith("github  scope=app:api  owner=cli:")
    assert token not in tokens.stdout

    bot = Dispatcher.open(tmp_path)
    try:
        assert ci_caller(bot, token) is not None
        with pytest.raises(PipelineError, match="give --app APP for a token that deploys one app"):
            create_ci_token(bot, name="everything", app=None, by="cli:ops")
        row = bot.engine.store.registry_login("api", "ghcr.io")
        assert "s3cret" not in row["secret"]
        audit = " ".join(str(r) for r in bot.engine.store.audit_log(limit=10))
        assert "s3cret" not in audit and token not in audit
        assert "ci token create github --app api" in audit
    finally:
        bot.close()
    assert (await ashipbot("ci", "token", "revoke", "github", home=tmp_path)).returncode == 0
    assert (await ashipbot("ci", "token", "revoke", "github", home=tmp_path)).returncode == 1
