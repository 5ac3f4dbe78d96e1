"""Roles × commands × environments through the real dispatcher: deny by default, audited.

The engine is pointed at a socket nobody listens on, so an allowed command shows that it
got past authorization by reaching the engine (or succeeding where it needs none), and a
denied one shows that it never did.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from commands.dispatch import ChatRequest, Dispatcher
from commands.replies import DENIED, USAGE, ApprovalRequest, Failure, Message, Result, Table

APP_YML = """\
name: shop
image: shop:1
replicas: 1
environments:
  staging: {replicas: 1}
"""

ADMIN = "console:root"
DEAD_ENGINE = "unix:///nonexistent/docker.sock"

# (command text, permission it needs); {env} is production or staging
COMMANDS = [
    ("status shop", "view"),
    ("releases shop --env {env}", "view"),
    ("logs shop --env {env}", "view"),
    ("env list shop --env {env}", "view"),
    ("deploy shop --env {env}", "deploy"),
    ("deploy shop --env {env} --dry-run", "deploy"),
    ("rollback shop --env {env}", "deploy"),
    ("scale shop 2 --env {env}", "deploy"),
    ("restart shop --env {env}", "deploy"),
    ("env set shop COLOR=blue --env {env}", "deploy"),
    ("env unset shop COLOR --env {env}", "deploy"),
    ("unlock shop --env {env}", "admin"),
    ("audit shop", "admin"),
    ("grants", "admin"),
    ("grant console:zed viewer --app shop", "admin"),
    ("apps add shop --path {folder}", "admin"),
]
ROLES = {
    None: set(),
    "viewer": {"view"},
    "deployer": {"view", "deploy"},
    "admin": {"view", "deploy", "admin"},
}
ENVS = ["production", "staging"]


def snapshot(db: Path) -> dict[str, list[tuple]]:
    """Every table that holds state a command could change (audit aside)."""
    conn = sqlite3.connect(db)
    try:
        return {
            table: conn.execute(f"SELECT * FROM {table} ORDER BY 1").fetchall()  # noqa: S608
            for table in (
                "apps",
                "releases",
                "deployments",
                "grants",
                "approvals",
                "locks",
                "variables",
            )
        }
    finally:
        conn.close()


@pytest.fixture
def home(tmp_path: Path, monkeypatch) -> Path:
    monkeypatch.setenv("DOCKER_HOST", DEAD_ENGINE)
    home = tmp_path / "home"
    home.mkdir()
    (home / "shipbot.yml").write_text(f"admins: [{ADMIN}]\n")
    folder = tmp_path / "shop"
    folder.mkdir()
    (folder / "app.yml").write_text(APP_YML)
    return home


async def say(bot: Dispatcher, user: str, text: str):
    return await bot.run(ChatRequest("console", user, "C-test", text))


@pytest.mark.parametrize("env", ENVS)
@pytest.mark.parametrize("role", list(ROLES))
async def test_every_cell(home: Path, tmp_path: Path, role: str | None, env: str):
    bot = Dispatcher.open(home)
    folder = tmp_path / "shop"
    assert isinstance((await say(bot, ADMIN, f"apps add shop --path {folder}"))[-1], Result)
    user = "console:sam"
    # the role is granted on this environment only: the other one must stay out of reach
    if role:
        await say(bot, ADMIN, f"grant {user} {role} --app shop --env {env}")
    other = "staging" if env == "production" else "production"
    for template, permission in COMMANDS:
        for target_env in (env, other):
            text = template.format(env=target_env, folder=folder)
            scoped = "{env}" in template
            allowed = permission in ROLES[role] and (
                target_env == env
                if scoped
                else role is not None and permission == "view" and text.startswith("status")
            )
            before = snapshot(home / "shipbot.db")
            audit_before = len(bot.engine.store.audit_log(limit=1000))
            replies = await say(bot, user, text)
            denied = [r for r in replies if isinstance(r, Failure) and r.kind == DENIED]
            if allowed:
                assert not denied, (role, text, replies)
                continue
            assert len(replies) == 1 and denied, (role, text, replies)
            needed = {"view": "viewer", "deploy": "deployer", "admin": "admin"}[permission]
            assert f"may not {permission} on " in denied[0].message
            assert f"needs the {needed} role" in denied[0].message
            assert snapshot(home / "shipbot.db") == before, (role, text)
            audit = bot.engine.store.audit_log(limit=1000)
            assert len(audit) == audit_before + 1
            assert (
                audit[0]["user"],
                audit[0]["command"],
                audit[0]["result"],
                audit[0]["channel"],
            ) == (user, text, "denied", "C-test")
    bot.close()


async def test_allowed_cells_reach_the_engine(home: Path, tmp_path: Path):
    bot = Dispatcher.open(home)
    await say(bot, ADMIN, f"apps add shop --path {tmp_path / 'shop'}")
    await say(bot, ADMIN, "grant console:dee deployer --app shop")
    engine_down = f"cannot reach the Docker engine at {DEAD_ENGINE}: is dockerd running?"
    for text, expected in (
        ("deploy shop", engine_down),
        ("status shop", engine_down),
        ("deploy shop --dry-run", engine_down),
        ("rollback shop --env staging", "shop has no earlier good release on staging"),
    ):
        replies = await say(bot, "console:dee", text)
        assert isinstance(replies[-1], Failure), replies
        assert replies[-1].message.startswith(expected), replies
    bot.close()


async def test_no_grant_means_help_and_whoami_only(home: Path):
    bot = Dispatcher.open(home)
    helped = await say(bot, "console:new", "help")
    assert isinstance(helped[0], Table)
    assert [row[0].split()[0] for row in helped[0].rows] == ["help", "whoami", "approve", "reject"]
    whoami = await say(bot, "console:new", "whoami")
    assert whoami == [
        Message(
            "you are console:new; you have no grants yet, so you may run only `help` and "
            "`whoami`. An admin can run `grant console:new viewer`."
        )
    ]
    full = await say(bot, ADMIN, "help")
    assert len(full[0].rows) > 15
    bot.close()


async def test_identity_is_the_platform_id_not_a_name(home: Path):
    bot = Dispatcher.open(home)
    await say(bot, ADMIN, "grant slack:U024BE7LH viewer")
    # same raw id from another platform is another person
    replies = await bot.run(ChatRequest("discord", "U024BE7LH", "c", "grants"))
    assert isinstance(replies[0], Failure) and replies[0].kind == DENIED
    assert "discord:U024BE7LH may not admin" in replies[0].message
    ok = await bot.run(ChatRequest("slack", "U024BE7LH", "c", "whoami"))
    assert isinstance(ok[1], Table) and ok[1].rows == (("viewer", "*", "*"),)
    bot.close()


async def test_grant_revoke_and_bad_input(home: Path):
    bot = Dispatcher.open(home)
    added = await say(bot, ADMIN, "grant console:kim deployer --app 'api-*' --env staging")
    assert added == [Result(True, "console:kim is deployer on api-*/staging")]
    again = await say(bot, ADMIN, "grant console:kim deployer --app 'api-*' --env staging")
    assert again[0].title.endswith("already: nothing changed")
    bad = await say(bot, ADMIN, "grant kim deployer")
    assert bad[0].kind == USAGE and "is not a user id" in bad[0].message
    assert bad[0].usage == "grant USER ROLE [--app APP] [--env ENV]"
    bad_role = await say(bot, ADMIN, "grant console:kim owner")
    assert "'owner' is not a role: use one of viewer, deployer, admin" in bad_role[0].message
    gone = await say(bot, ADMIN, "revoke console:kim deployer --app 'api-*' --env staging")
    assert gone == [Result(True, "console:kim is no longer deployer on api-*/staging")]
    assert bot.engine.store.grants("console:kim") == []
    bot.close()


async def test_approval_reply_needs_no_engine_to_be_denied(home: Path, tmp_path: Path):
    """An unauthorized requester never creates an approval request."""
    folder = tmp_path / "shop"
    (folder / "app.yml").write_text(APP_YML + "approval: true\n")
    bot = Dispatcher.open(home)
    await say(bot, ADMIN, f"apps add shop --path {folder}")
    await say(bot, ADMIN, "grant console:vic viewer --app shop")
    replies = await say(bot, "console:vic", "deploy shop")
    assert not any(isinstance(r, ApprovalRequest) for r in replies)
    assert bot.engine.store.db["approvals"].count == 0
    bot.close()
