"""Approvals, locks and secrets end to end: console chat, real SQLite, real swarm."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
import yaml

from commands.dispatch import ChatRequest, Dispatcher
from commands.replies import DENIED, ApprovalRequest, Failure, Message, Result
from core.secrets import MASK
from tests.chat import fetch, logs, result, say, table, task_addresses
from tests.clock import JumpClock

pytestmark = pytest.mark.docker

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "hello"
ADMIN = "console:alice"


@pytest.fixture
def setup(tmp_path: Path, made_apps):
    """A fresh home with alice as bootstrap admin and a unique copy of examples/hello."""
    name = f"g{uuid.uuid4().hex[:8]}"
    folder = tmp_path / name
    shutil.copytree(EXAMPLE, folder)
    yml = folder / "app.yml"
    yml.write_text(yml.read_text().replace("name: hello", f"name: {name}"))
    home = tmp_path / "home"
    home.mkdir()
    (home / "shipbot.yml").write_text(f"admins: [{ADMIN}]\n")
    made_apps.append(name)
    return name, folder, home


def require_approval(folder: Path, env: str, rule: dict) -> None:
    yml = folder / "app.yml"
    doc = yaml.safe_load(yml.read_text())
    doc.setdefault("environments", {}).setdefault(env, {})["approval"] = rule
    yml.write_text(yaml.safe_dump(doc))


async def test_production_approval_story(setup, docker_client):
    name, folder, home = setup
    require_approval(
        folder, "production", {"required": 1, "approvers": ["deployer"], "expires": "30m"}
    )
    (home / "shipbot.yml").write_text(
        f"admins: [{ADMIN}]\nnotify:\n  - {{platform: slack, channel: CDEPLOYS, "
        "envs: [production], kinds: [deploys]}\n"
    )
    bot = Dispatcher.open(home)
    assert result(await say(bot, f"apps add {name} --path {folder}", ADMIN)).ok
    for user, role in (
        ("console:bob", "deployer"),
        ("console:carol", "deployer"),
        ("console:dave", "viewer"),
    ):
        assert result(await say(bot, f"grant {user} {role} --app {name}", ADMIN)).ok

    asked = await say(bot, f"deploy {name}", "console:bob")
    request = next(r for r in asked if isinstance(r, ApprovalRequest))
    assert request.summary == f"deploy {name} requested by console:bob"
    assert request.actions == (
        ("Approve", f"approve {request.id}"),
        ("Reject", f"reject {request.id}"),
    )
    assert request.details[0] == "release 1 (build)"
    assert f"create service {name}-production" in request.details
    assert docker_client.api.services(filters={"name": f"{name}-production"}) == []

    self_approval = await say(bot, f"approve {request.id}", "console:bob")
    assert self_approval == [
        Failure(f"you requested {request.id} yourself; someone else must approve it", DENIED)
    ]
    # someone who could not approve learns nothing about the request, not even its app
    viewer = await say(bot, f"approve {request.id}", "console:dave")
    assert viewer == [Failure(f"you may not approve request {request.id}", DENIED)]
    assert await say(bot, "approve 999", "console:dave") == [
        Failure("you may not approve request 999", DENIED)
    ]

    # the process restarts between request and approval: nothing pending is lost
    bot.close()
    bot = Dispatcher.open(home)
    approved = await say(bot, f"approve {request.id}", "console:carol")
    outcome = result(approved)
    assert outcome.ok and outcome.title == f"{name} release 1 is live on production"
    assert {fetch(a) for a in task_addresses(docker_client, f"{name}-production")} == {
        "hello from shipbot\n"
    }
    row = bot.engine.store.db["deployments"].get(1)
    assert (row["started_by"], row["approved_by"], row["status"]) == (
        "console:bob",
        "console:carol",
        "succeeded",
    )

    (note,) = bot.engine.store.db["outbox"].rows  # the result also went to #deploys
    assert (note["platform"], note["channel"], note["kind"]) == ("slack", "CDEPLOYS", "deploys")
    assert f"{name} release 1 is live on production" in note["payload"]

    again = await say(bot, f"approve {request.id}", "console:carol")
    assert again == [
        Failure(
            f"request {request.id} is already executed (approved by console:carol); nothing to do"
        )
    ]
    assert len(bot.engine.store.releases(name, "production")) == 1

    # a double click from two people at once runs the deploy once
    second = next(
        r for r in await say(bot, f"deploy {name}", "console:bob") if isinstance(r, ApprovalRequest)
    )
    both = await asyncio.gather(
        say(bot, f"approve {second.id}", "console:carol"), say(bot, f"approve {second.id}", ADMIN)
    )
    results = [r for replies in both for r in replies if isinstance(r, Result)]
    assert len(results) == 1 and results[0].ok
    assert len(bot.engine.store.releases(name, "production")) == 2

    audit = [(r["user"], r["command"], r["result"]) for r in bot.engine.store.audit_log(name)]
    assert ("console:bob", f"deploy {name}", "pending") in audit
    bot.close()


async def test_approval_expires_and_says_so(setup):
    name, folder, home = setup
    require_approval(folder, "staging", {"expires": "1s"})
    clock = JumpClock()
    bot = Dispatcher.open(home, clock)
    await say(bot, f"apps add {name} --path {folder}", ADMIN)
    await say(bot, f"grant console:bob deployer --app {name}", ADMIN)
    asked = await say(bot, f"deploy {name} --env staging", "console:bob")
    request = next(r for r in asked if isinstance(r, ApprovalRequest))
    clock.jump(1.2)
    expired = bot.expire_due()
    assert expired == [
        (
            "console",
            "console",
            Message(
                f"request {request.id} (`deploy {name} --env staging` by console:bob) "
                "expired without approval; nothing was changed"
            ),
        )
    ]
    late = await say(bot, f"approve {request.id}", ADMIN)
    assert late[0].message.startswith(f"request {request.id} is already expired")
    assert bot.engine.store.releases(name, "staging") == []
    bot.close()


async def test_two_concurrent_deploys_one_runs(setup, docker_client):
    name, folder, home = setup
    bot = Dispatcher.open(home)
    await say(bot, f"apps add {name} --path {folder}", ADMIN)
    first, second = await asyncio.gather(
        say(bot, f"deploy {name} --env staging", ADMIN),
        say(bot, f"deploy {name} --env staging", "console:alice"),
    )
    outcomes = sorted([first, second], key=lambda replies: isinstance(replies[-1], Failure))
    assert result(outcomes[0]).ok
    busy = outcomes[1][-1]
    assert isinstance(busy, Failure)
    assert busy.message.startswith(f"{name}/staging is being changed by console:alice (`deploy ")
    assert busy.message.endswith(f"an admin can `unlock {name} --env staging`")
    assert len(bot.engine.store.releases(name, "staging")) == 1
    bot.close()


async def test_killed_deploy_leaves_a_recoverable_lock(setup, tmp_path, monkeypatch):
    name, folder, home = setup
    ttl = 3.0  # a heartbeat silent this long means its process is gone (PIDs say nothing)
    monkeypatch.setenv("SHIPBOT_LOCK_TTL", str(ttl))
    (folder / "Dockerfile").write_text(
        "FROM busybox\nRUN sleep 30\nCOPY www /www\n"
        'CMD ["httpd", "-f", "-p", "8080", "-h", "/www"]\n'
    )
    bot = Dispatcher.open(home)
    await say(bot, f"apps add {name} --path {folder}", ADMIN)
    env = {**os.environ, "SHIPBOT_HOME": str(home)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "bot.cli", "chat", f"deploy {name}", "--as", ADMIN],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        cwd=Path(__file__).resolve().parent.parent,
    )
    db = sqlite3.connect(home / "shipbot.db")
    try:
        deadline = time.monotonic() + 30
        # mid-deploy: the lock is held and the deployment row says running (the build sleeps)
        while not db.execute(
            "SELECT 1 FROM locks, deployments WHERE deployments.status = 'running'"
        ).fetchall():
            assert proc.poll() is None, "the deploy ended before it could be killed"
            assert time.monotonic() < deadline, "the deploy never took its lock"
            await asyncio.sleep(0.1)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()

    busy = await say(bot, f"deploy {name}", ADMIN)
    assert busy[-1].message.startswith(f"{name}/production is being changed by {ADMIN}")
    bot.close()
    # the deployment's heartbeat falls silent (its process is gone for real); once it is
    # older than the TTL, it is stale
    deadline = time.monotonic() + ttl + 10
    while db.execute(
        "SELECT 1 FROM deployments WHERE status = 'running' AND heartbeat_at > ?",
        [time.time() - ttl],
    ).fetchall():
        assert time.monotonic() < deadline, "the killed deploy's heartbeat still beats"
        await asyncio.sleep(0.2)
    (home / "shipbot.yml").write_text(
        f"admins: [{ADMIN}]\nnotify:\n  - {{platform: slack, channel: CALERTS}}\n"
    )
    bot = Dispatcher.open(home)  # a restart reconciles the dead deployment, and says so
    row = bot.engine.store.db["deployments"].get(1)
    assert row["status"] == "interrupted"
    alert = bot.engine.store.db["outbox"].get(1)
    assert (alert["channel"], alert["kind"]) == ("CALERTS", "alerts")
    assert f"deploy of {name} (production) by {ADMIN} was interrupted" in alert["payload"]
    cleared = await say(bot, f"unlock {name}", ADMIN)
    assert result(cleared).title.startswith(f"{name}/production unlocked (was held by {ADMIN}")
    assert bot.engine.store.db["locks"].count == 0
    db.close()
    bot.close()


async def test_stale_lock_is_taken_over_after_its_heartbeat_dies(setup, monkeypatch):
    name, folder, home = setup
    monkeypatch.setenv("SHIPBOT_LOCK_TTL", "1")
    clock = JumpClock()
    bot = Dispatcher.open(home, clock)
    await say(bot, f"apps add {name} --path {folder}", ADMIN)
    bot.engine.store.acquire_lock(
        f"{name}/staging", owner="console:ghost", what="deploy", ttl=1, host="gone"
    )
    busy = await say(bot, f"deploy {name} --env staging", ADMIN)
    assert "is being changed by console:ghost" in busy[-1].message
    clock.jump(1.1)  # the ghost's heartbeat is a second old: stale
    assert result(await say(bot, f"deploy {name} --env staging", ADMIN)).ok
    bot.close()


async def test_secrets_never_in_plain_text(setup, docker_client):
    name, folder, home = setup
    value = "tok-3f9a2c71e5"
    # someone left the value in the Dockerfile: the streamed build log echoes it
    (folder / "Dockerfile").write_text(
        f"FROM busybox\nRUN echo using {value} for the build\nCOPY www /www\n"
        'CMD ["httpd", "-f", "-p", "8080", "-h", "/www"]\n'
    )
    bot = Dispatcher.open(home)
    await say(bot, f"apps add {name} --path {folder}", ADMIN)
    stored = await bot.run(
        ChatRequest("console", ADMIN, "console", f"secret set {name} API_TOKEN", secret=value)
    )
    assert result(stored).ok
    await say(bot, f"env set {name} COLOR=blue", ADMIN)
    listed = table(await say(bot, f"env list {name}", ADMIN))
    assert ("API_TOKEN", MASK, f"secret ({ADMIN})") in listed.rows
    assert ("COLOR", "blue", f"chat ({ADMIN})") in listed.rows

    deployed = await say(bot, f"deploy {name}", ADMIN)
    assert result(deployed).ok
    build_log = "\n".join(logs(deployed))
    assert f"using {MASK} for the build" in build_log
    assert value not in repr(deployed)

    service = docker_client.api.inspect_service(f"{name}-production")["Spec"]
    env = service["TaskTemplate"]["ContainerSpec"]["Env"]
    assert f"API_TOKEN={value}" in env and "COLOR=blue" in env  # delivered to the containers
    bot.close()
    raw = b"".join(p.read_bytes() for p in home.iterdir() if p.name.startswith("shipbot.db"))
    assert value.encode() not in raw
    assert b"API_TOKEN" in raw  # the key is there, the value is not

    bot = Dispatcher.open(home)  # a rollback target keeps its sealed secret
    await say(bot, f"env set {name} COLOR=green", ADMIN)
    assert result(await say(bot, f"deploy {name}", ADMIN)).ok
    assert result(await say(bot, f"rollback {name}", ADMIN)).ok
    env = docker_client.api.inspect_service(f"{name}-production")["Spec"]["TaskTemplate"][
        "ContainerSpec"
    ]["Env"]
    assert f"API_TOKEN={value}" in env and "COLOR=blue" in env
    bot.close()
