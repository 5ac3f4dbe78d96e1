"""``run APP [--env E] -- CMD…`` through the real dispatcher on the fake swarm: grammar,
roles, approval bound to the exact argv, output then exit code, audit."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from commands.catalog.jobs import Run
from commands.grammar import UsageError, parse, render
from commands.replies import DENIED, FAILED, USAGE, ApprovalRequest, Failure, Log, Result
from core.secrets import MASK
from core.store import App
from tests.chat import say
from tests.fast_plane import dispatcher, fake_swarm, register

APP_YML = """\
name: shop
image: shop:1
env: {GREETING: hello}
approval: true
environments:
  staging: {approval: false}
"""
ADMIN, DEPLOYER, VIEWER = "console:root", "console:dee", "console:vic"
SECRET = "tok-0123456789abcdef"


def test_everything_after_the_mark_is_argv_word_for_word():
    text = "run shop --env staging -- sh -c 'echo $HOME; exit 2' --env x"
    request = parse(text)
    assert request == Run(
        app="shop", env="staging", command=("sh", "-c", "echo $HOME; exit 2", "--env", "x")
    )
    assert render(request) == text
    assert parse(render(request)) == request
    assert parse("run shop -- --help") == Run(app="shop", command=("--help",))
    assert Run.spec.usage == "run APP [--env ENV] [--break-glass REASON] -- CMD…"


def test_a_mark_in_another_command_is_refused():
    with pytest.raises(UsageError) as caught:
        parse("restart shop -- x")
    assert "unknown option --" in str(caught.value)


@pytest.fixture
async def bot(tmp_path: Path):
    swarm = fake_swarm("shop:1")
    home = tmp_path / "home"
    home.mkdir()
    folder = tmp_path / "shop"
    folder.mkdir()
    (folder / "app.yml").write_text(APP_YML)
    bot = dispatcher(home, swarm, [ADMIN])
    register(bot.engine.store, App("shop", "path", str(folder), None, ADMIN, time.time()))
    for text in (
        f"grant {DEPLOYER} deployer --app shop",
        f"grant {VIEWER} viewer --app shop",
        "deploy shop --env staging",
        "deploy shop --break-glass seeding",
    ):
        replies = await say(bot, text, user=ADMIN)
        assert isinstance(replies[-1], Result) and replies[-1].ok, (text, replies)
    bot.swarm = swarm  # type: ignore[attr-defined]
    yield bot
    bot.close()


async def test_run_prints_the_output_then_the_exit_code_and_is_audited(bot):
    bot.engine.store.set_variable(
        app="shop",
        env="staging",
        key="API_TOKEN",
        value=bot.engine.vault.encrypt(SECRET),
        secret=True,
        updated_by=ADMIN,
    )
    bot.swarm.job_handler = lambda argv, env: (2, [f"{env['GREETING']} {SECRET}", "bye"])
    replies = await say(bot, "run shop --env staging -- ./report --all", user=DEPLOYER)
    assert [r.text for r in replies if isinstance(r, Log)] == [f"hello {MASK}", "bye"]
    outcome = replies[-1]
    assert isinstance(outcome, Result) and not outcome.ok
    assert outcome.title == "`./report --all` on shop (staging): it exited with 2"
    assert outcome.fields["exit code"] == "2" and outcome.fields["release"] == "1"
    assert bot.swarm.jobs[-1][1] == ("./report", "--all")
    assert not [s for s in bot.swarm._services if "_run-" in s]  # removed
    row = bot.engine.store.audit_log("shop")[0]
    assert (row["user"], row["command"], row["result"]) == (
        DEPLOYER,
        "run shop --env staging -- ./report --all",
        "failed",
    )
    bot.swarm.job_handler = lambda argv, env: (0, ["ok"])
    done = await say(bot, "run shop --env staging -- true", user=DEPLOYER)
    assert isinstance(done[-1], Result) and done[-1].ok
    assert done[-1].title == "`true` on shop (staging): it exited with 0"


async def test_run_needs_the_deployer_role_and_a_command(bot):
    denied = await say(bot, "run shop --env staging -- ls", user=VIEWER)
    assert len(denied) == 1 and isinstance(denied[0], Failure) and denied[0].kind == DENIED
    empty = await say(bot, "run shop --env staging", user=DEPLOYER)
    assert isinstance(empty[-1], Failure) and empty[-1].kind == USAGE
    assert "give the command after `--`" in empty[-1].message
    assert bot.swarm.jobs == []


async def test_run_in_production_waits_for_an_approval_of_that_exact_argv(bot):
    asked = await say(bot, "run shop -- sh -c 'rm -rf /tmp/cache'", user=DEPLOYER)
    assert isinstance(asked[-1], ApprovalRequest), asked
    assert bot.swarm.jobs == []
    row = bot.engine.store.approval(asked[-1].id)
    assert row["command"] == "run shop -- sh -c 'rm -rf /tmp/cache'"
    approved = await say(bot, f"approve {asked[-1].id}", user=ADMIN)
    assert isinstance(approved[-1], Result) and approved[-1].ok, approved
    assert [argv for _, argv, _ in bot.swarm.jobs] == [("sh", "-c", "rm -rf /tmp/cache")]


async def test_run_without_a_live_release_says_deploy_first(bot, tmp_path):
    replies = await say(bot, "run nothere -- ls", user=ADMIN)
    assert isinstance(replies[-1], Failure) and replies[-1].kind == FAILED
    folder = tmp_path / "idle"
    folder.mkdir()
    (folder / "app.yml").write_text("name: idle\nimage: shop:1\n")
    register(bot.engine.store, App("idle", "path", str(folder), None, ADMIN, time.time()))
    replies = await say(bot, "run idle -- ls", user=ADMIN)
    assert replies[-1] == Failure(
        "idle has no live release in production: deploy it first (`deploy idle`)", FAILED
    )
