"""Roles × commands × environments through the real dispatcher: deny by default, audited.

The dispatcher's engine runs on an in-memory swarm (``tests.fast_plane``) where ``shop``
(an image app) is already deployed, so every allowed cell must *succeed* with the reply its
command gives (production asks for approval, staging does not), and every denied cell is
refused, changes nothing, never reaches the swarm and is audited. Approving, rejecting and
``secret set`` go through the same matrix. The tests at the end open the control plane as
a host does, with its engine at a socket nobody listens on.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import pytest

from commands.dispatch import ChatRequest, Dispatcher
from commands.replies import (
    DENIED,
    USAGE,
    ApprovalRequest,
    Failure,
    Index,
    Log,
    Message,
    Result,
    Step,
    Table,
)
from core.swarm.testing import FakeSwarm
from tests.fast_plane import dispatcher, fake_swarm

# production asks for approval (the default approvers: deployer and admin), staging not
APP_YML = """\
name: shop
image: shop:1
replicas: 1
env: {GREETING: hello}
approval: true
environments:
  staging: {replicas: 1, approval: false}
"""

ADMIN = "console:root"
USER = "console:sam"
DEAD_ENGINE = "unix:///nonexistent/docker.sock"
SECRET = "long-enough-value"
ENVS = ["production", "staging"]
APPROVAL_ENV = "production"

# what an allowed command answers: CHANGE is a Result(ok=True) where no approval is asked
# for, an ApprovalRequest where it is
CHANGE = "change"


class Command(NamedTuple):
    template: str  # {env} is production or staging
    permission: str
    # env: needs the role on that environment; seen: view on shop anywhere (the reply shows
    # only what the grant covers); app: on every environment of shop; all: on every app
    reach: str
    reply: type | str  # the kind of the last reply when allowed
    audited: bool = False  # an allowed run writes an audit row (it changes state)
    secret: str | None = None


COMMANDS = [
    Command("status shop", "view", "seen", Table),
    Command("releases shop --env {env}", "view", "env", Table),
    Command("logs shop --env {env}", "view", "env", Log),
    Command("env list shop --env {env}", "view", "env", Table),
    Command("deploy shop --env {env}", "deploy", "env", CHANGE, True),
    Command("deploy shop --env {env} --dry-run", "deploy", "env", Message),
    Command("rollback shop --env {env}", "deploy", "env", CHANGE, True),
    Command("scale shop 2 --env {env}", "deploy", "env", CHANGE, True),
    Command("restart shop --env {env}", "deploy", "env", CHANGE, True),
    Command("run shop --env {env} -- true", "deploy", "env", CHANGE, True),
    Command("env set shop COLOR=blue --env {env}", "deploy", "env", CHANGE, True),
    Command("env unset shop COLOR --env {env}", "deploy", "env", CHANGE, True),
    Command("secret set shop TOKEN --env {env}", "deploy", "env", CHANGE, True, SECRET),
    Command("unlock shop --env {env}", "admin", "env", Message, True),
    Command("audit shop", "admin", "app", Table),
    Command("grants", "admin", "all", Table),
    Command("grant console:zed viewer --app shop", "admin", "app", Result, True),
    Command("apps add shop --path {folder}", "admin", "app", Result, True),
]
ROLES = {
    None: set(),
    "viewer": {"view"},
    "deployer": {"view", "deploy"},
    "admin": {"view", "deploy", "admin"},
}
NEEDED = {"view": "viewer", "deploy": "deployer", "admin": "admin"}
# the environments a grant covers: one, or every one ("*")
SCOPES = [*ENVS, "*"]


def allowed(role: str | None, scope: str, command: Command, env: str) -> bool:
    if command.permission not in ROLES[role]:
        return False
    return {
        "env": scope in ("*", env),
        "seen": True,
        "app": scope == "*",
        "all": False,
    }[command.reach]


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


@dataclass
class Plane:
    bot: Dispatcher
    swarm: FakeSwarm
    home: Path
    folder: Path


@pytest.fixture
async def plane(home: Path, tmp_path: Path):
    """shop registered by the admin and deployed twice to each environment (production
    through break glass, as it asks for approval)."""
    swarm = fake_swarm("shop:1")
    bot = dispatcher(home, swarm, [ADMIN])
    folder = tmp_path / "shop"
    assert (await say(bot, ADMIN, f"apps add shop --path {folder}"))[-1] == Result(
        True,
        "registered shop",
        (
            "environments: production, staging",
            "no domains: reachable only inside the swarm network",
        ),
        {"source": str(folder), "kind": "path"},
    )
    for text in ["deploy shop --env staging"] * 2 + [
        "deploy shop --env production --break-glass 'seeding the test'"
    ] * 2:
        replies = await say(bot, ADMIN, text)
        assert isinstance(replies[-1], Result) and replies[-1].ok, replies
    yield Plane(bot, swarm, home, folder)
    bot.close()


async def say(bot: Dispatcher, user: str, text: str, secret: str | None = None):
    return await bot.run(ChatRequest("console", user, "C-test", text, secret))


def assert_denied(plane: Plane, user: str, text: str, replies, before, calls, audit_before):
    """Refused with the denial, nothing changed, the swarm never asked, one denied row."""
    assert len(replies) == 1 and isinstance(replies[0], Failure), (user, text, replies)
    assert replies[0].kind == DENIED, (user, text, replies)
    assert snapshot(plane.home / "shipbot.db") == before, (user, text)
    assert plane.swarm.calls[len(calls) :] == [], (user, text)
    audit = plane.bot.engine.store.audit_log(limit=1000)
    assert len(audit) == audit_before + 1, (user, text)
    assert (
        audit[0]["user"],
        audit[0]["command"],
        audit[0]["result"],
        audit[0]["channel"],
    ) == (user, text, "denied", "C-test")


def state(plane: Plane):
    return (
        snapshot(plane.home / "shipbot.db"),
        list(plane.swarm.calls),
        len(plane.bot.engine.store.audit_log(limit=1000)),
    )


@pytest.mark.parametrize("scope", SCOPES)
@pytest.mark.parametrize("role", list(ROLES))
async def test_every_cell(plane: Plane, role: str | None, scope: str):
    bot = plane.bot
    # the role is granted on this environment only (or all): the others stay out of reach
    if role:
        granted = await say(bot, ADMIN, f"grant {USER} {role} --app shop --env '{scope}'")
        assert granted == [Result(True, f"{USER} is {role} on shop/{scope}")]
    for command in COMMANDS:
        targets = ENVS if "{env}" in command.template else ENVS[:1]
        for env in targets:
            text = command.template.format(env=env, folder=plane.folder)
            before, calls, audit_before = state(plane)
            replies = await say(bot, USER, text, command.secret)
            if not allowed(role, scope, command, env):
                assert_denied(plane, USER, text, replies, before, calls, audit_before)
                denial = replies[0].message
                assert f"may not {command.permission} on " in denial
                assert f"needs the {NEEDED[command.permission]} role" in denial
                continue
            assert replies and SECRET not in repr(replies), (role, text)
            assert not [r for r in replies if isinstance(r, Failure)], (role, scope, text, replies)
            assert all(r.ok for r in replies if isinstance(r, Result)), (role, text, replies)
            kind = command.reply
            if kind == CHANGE:
                kind = ApprovalRequest if env == APPROVAL_ENV else Result
            assert isinstance(replies[-1], kind), (role, scope, text, replies)
            audit = bot.engine.store.audit_log(limit=1000)
            if kind is ApprovalRequest:
                asked = replies[-1]
                assert (asked.requester, asked.approvers) == (USER, ("deployer", "admin"))
                row = bot.engine.store.approval(asked.id)
                assert (row["status"], row["command"], row["requester"]) == (
                    "pending",
                    reviewed(text),
                    USER,
                )
                assert len(audit) == audit_before + 1
                assert (audit[0]["user"], audit[0]["result"]) == (USER, "pending")
            elif command.audited:
                accepts = text.startswith("apps add")  # and a row for the policy it accepts
                assert len(audit) == audit_before + 1 + accepts
                assert (audit[0]["user"], audit[0]["command"], audit[0]["result"]) == (
                    USER,
                    text,
                    "ok",
                )
                if accepts:
                    assert (audit[1]["user"], audit[1]["command"]) == (USER, "policy accept shop")
            else:
                assert len(audit) == audit_before, (role, text)
            if command.template == "status shop":
                covered = set(ENVS) if scope == "*" else {scope}
                assert {row[1] for row in replies[-1].rows} == covered, replies
            if command.template == "logs shop --env {env}":
                assert all(isinstance(r, Log) for r in replies), replies
            if command.reply == Table and command.template.startswith("env list"):
                assert ("GREETING", "hello", "app.yml") in replies[-1].rows


def test_the_matrix_allows_each_command_somewhere():
    """Only `grants` (every app) is out of reach of a grant on shop."""
    never = [
        c.template
        for c in COMMANDS
        if not any(allowed(r, s, c, e) for r in ROLES for s in SCOPES for e in ENVS)
    ]
    assert never == ["grants"]


# approving and rejecting: the requester is a deployer on production, whose changes there
# wait for a deployer or admin of shop/production other than the requester
REQUESTER = "console:req"
APPROVER = "console:ann"
REQUESTS = [
    ("deploy shop --env production", None, "shop release 5 is live on production"),
    ("rollback shop --env production", None, "shop is back on release 3 (production)"),
    ("scale shop 2 --env production", None, "shop (production) scaled to 2"),
    ("restart shop --env production", None, "shop (production) restarted, 2 tasks replaced"),
    (
        "env set shop COLOR=blue --env production",
        None,
        "COLOR set for shop (production); `deploy shop` to apply",
    ),
    (
        "env unset shop COLOR --env production",
        None,
        "COLOR removed from shop (production); `deploy shop` to apply",
    ),
    (
        "secret set shop TOKEN --env production",
        SECRET,
        "secret TOKEN stored for shop (production), encrypted; `deploy shop` to apply",
    ),
]
# A rollback is reviewed as the release it goes back to, pinned when it is asked for.
PINNED = {
    "rollback shop --env production": "rollback shop 3 --env production",
    "rollback shop --env staging": "rollback shop 3 --env staging",
}


def reviewed(text: str) -> str:
    return PINNED.get(text, text)


# (role, scope) of the one deciding; "requester" is the requester themself
DECIDERS = [(role, scope) for role in ROLES for scope in SCOPES if role or scope == "*"]


def may_approve(role: str | None, scope: str) -> bool:
    return role in ("deployer", "admin") and scope in ("*", APPROVAL_ENV)


async def requested(plane: Plane) -> list[tuple[int, str, str | None, str]]:
    """Every approvable change, asked for by the requester: (id, text, secret, its title)."""
    assert await say(plane.bot, ADMIN, f"grant {REQUESTER} deployer --app shop --env production")
    out = []
    for text, secret, title in REQUESTS:
        replies = await say(plane.bot, REQUESTER, text, secret)
        assert len(replies) == 1 and isinstance(replies[0], ApprovalRequest), (text, replies)
        out.append((replies[0].id, text, secret, title))
    return out


async def grant_decider(plane: Plane, decider: tuple[str | None, str] | str) -> str:
    if decider == "requester":
        return REQUESTER
    role, scope = decider
    if role:
        await say(plane.bot, ADMIN, f"grant {APPROVER} {role} --app shop --env '{scope}'")
    return APPROVER


@pytest.mark.parametrize("decider", [*DECIDERS, "requester"], ids=str)
async def test_approve(plane: Plane, decider):
    asked = await requested(plane)
    user = await grant_decider(plane, decider)
    store = plane.bot.engine.store
    for approval_id, text, secret, title in asked:
        before, calls, audit_before = state(plane)
        replies = await say(plane.bot, user, f"approve {approval_id}")
        if decider == "requester":
            assert replies == [
                Failure(
                    f"you requested {approval_id} yourself; someone else must approve it", DENIED
                )
            ]
            assert_denied(
                plane, user, f"approve {approval_id}", replies, before, calls, audit_before
            )
            continue
        if not may_approve(*decider):
            assert replies == [Failure(f"you may not approve request {approval_id}", DENIED)]
            assert_denied(
                plane, user, f"approve {approval_id}", replies, before, calls, audit_before
            )
            continue
        # approved: the change runs now, as the requester, and succeeds
        assert replies[0] == Step(f"{approval_id} approved by {user}: running `{reviewed(text)}`")
        assert not [r for r in replies if isinstance(r, Failure)], (text, replies)
        assert all(r.ok for r in replies if isinstance(r, Result)), (text, replies)
        assert isinstance(replies[-1], Result) and replies[-1].title == title, replies
        row = store.approval(approval_id)
        assert (row["status"], json.loads(row["approved_by"])) == ("executed", [user])
        audit = store.audit_log(limit=1000)
        assert (audit[0]["user"], audit[0]["command"], audit[0]["result"]) == (
            user,
            f"approve {approval_id}",
            "ok",
        )
        if secret is not None:  # the value sealed with the request is what was stored
            assert plane.bot.engine.secret_values("shop", "production") == [secret]
            assert all(secret not in repr(r) for r in replies)
    if not (decider != "requester" and may_approve(*decider)):
        assert [r.number for r in store.releases("shop", "production")] == [4, 3]
        return
    releases = store.releases("shop", "production")
    # the approved deploy made release 5 as its requester; the approved rollback went back
    assert [(r.number, r.deployed_by, r.status) for r in releases] == [
        (5, REQUESTER, "superseded"),
        (4, ADMIN, "superseded"),
        (3, ADMIN, "live"),  # the rollback went where it was reviewed to go
    ]
    # nothing is left to approve, and nothing about an unknown request is told
    assert (await say(plane.bot, user, f"approve {asked[0][0]}"))[0].kind == "failed"
    unknown = await say(plane.bot, user, "approve 99")
    assert unknown == [Failure("you may not approve request 99", DENIED)]


@pytest.mark.parametrize("decider", [*DECIDERS, "requester"], ids=str)
async def test_reject(plane: Plane, decider):
    asked = await requested(plane)
    user = await grant_decider(plane, decider)
    store = plane.bot.engine.store
    for approval_id, text, _secret, _title in asked:
        before, calls, audit_before = state(plane)
        replies = await say(plane.bot, user, f"reject {approval_id}")
        if decider != "requester" and not may_approve(*decider):
            assert replies == [Failure(f"you may not reject request {approval_id}", DENIED)]
            assert_denied(
                plane, user, f"reject {approval_id}", replies, before, calls, audit_before
            )
            assert store.approval(approval_id)["status"] == "pending"
            continue
        assert replies == [
            Result(True, f"request {approval_id} ({reviewed(text)}) rejected by {user}")
        ]
        assert store.approval(approval_id)["status"] == "rejected"
        assert plane.swarm.calls == calls, text  # nothing ran
        audit = store.audit_log(limit=1000)
        assert (audit[0]["user"], audit[0]["command"], audit[0]["result"]) == (
            user,
            f"reject {approval_id}",
            "ok",
        )
    assert [r.number for r in store.releases("shop", "production")] == [4, 3]
    assert plane.bot.engine.secret_values("shop", "production") == []


async def test_secret_set_needs_a_long_enough_value_before_any_approval(plane: Plane):
    await say(plane.bot, ADMIN, f"grant {USER} deployer --app shop")
    for env in ENVS:
        for secret in (None, "short"):
            before, calls, _ = state(plane)
            replies = await say(plane.bot, USER, f"secret set shop TOKEN --env {env}", secret)
            assert len(replies) == 1 and isinstance(replies[0], Failure), replies
            assert replies[0].kind == "failed"
            assert snapshot(plane.home / "shipbot.db") == before
            assert plane.swarm.calls == calls
    assert plane.bot.engine.store.db["approvals"].count == 0


# the control plane as a host opens it: its engine at a socket nobody listens on
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
    assert isinstance(helped[0], Index)
    assert [row[1] for row in helped[0].rows] == ["whoami · help · approve · reject"]
    whoami = await say(bot, "console:new", "whoami")
    assert whoami == [
        Message(
            "you are console:new; you have no grants yet, so you may run only `help` and "
            "`whoami`. An admin can run `grant console:new viewer`."
        )
    ]
    full = await say(bot, ADMIN, "help")
    assert len(full[0].rows) == 9  # every family
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
    folder = tmp_path / "shop"  # its app.yml asks for approval on production
    bot = Dispatcher.open(home)
    await say(bot, ADMIN, f"apps add shop --path {folder}")
    await say(bot, ADMIN, "grant console:vic viewer --app shop")
    replies = await say(bot, "console:vic", "deploy shop")
    assert not any(isinstance(r, ApprovalRequest) for r in replies)
    assert bot.engine.store.db["approvals"].count == 0
    bot.close()
