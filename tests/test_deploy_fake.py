"""The operations (deploy, rollback, scale, restart, reconcile) through a ``Plane`` whose only
server is the in-memory swarm: each rollout verdict as the channel and the store see it.
The last test checks the fake's story against the real engine."""

from __future__ import annotations

import shutil
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from commands.dispatch import Dispatcher
from core.deploy import adjust, reconcile, rollback
from core.deploy.deploy import deploy
from core.deploy.resolve import resolve
from core.deploy.seal import SEALED, unseal
from core.errors import BuildError, DeployError
from core.events import Outcome, Progress
from core.plane import Plane
from core.secrets import Vault
from core.store import App, Store
from core.swarm.servers import Servers
from core.swarm.testing import EXITS_0, STUCK, UNHEALTHY, FakeSwarm
from tests.chat import result, say
from tests.clock import SwarmSteps
from tests.fake_plane import (
    PLAIN,
    PROBE_FAILED,
    WEB,
    drain,
    fast_swarm,
    outcome_of,
    running_images,
)
from tests.fast_plane import register


@pytest.fixture
def fake() -> FakeSwarm:
    return fast_swarm()


@pytest.fixture
def plane(tmp_path: Path, fake: FakeSwarm) -> AsyncIterator[Plane]:
    store = Store(tmp_path / "shipbot.db")
    for name, text in (("web", WEB), ("plain", PLAIN)):
        folder = tmp_path / name
        folder.mkdir()
        (folder / "app.yml").write_text(text)
        register(store, App(name, "path", str(folder), None, "console:alice", time.time()))
    yield Plane(
        store,
        Vault(Fernet.generate_key()),
        Servers({"local": lambda: fake}),
        tmp_path,
        clock=SwarmSteps(fake),
    )
    store.close()


async def ship(plane: Plane, app: str, tag: str) -> Outcome:
    resolved = await resolve(plane, app, None, tag)
    return outcome_of(await drain(deploy(plane, resolved, user="console:alice")))


def statuses(plane: Plane, app: str) -> list[tuple[int, str]]:
    return [(r.number, r.status) for r in plane.store.releases(app, "production")]


async def test_deploy_converged(plane, fake):
    outcome = await ship(plane, "web", "1")
    assert outcome.ok and outcome.title == "web release 1 is live on production"
    assert statuses(plane, "web") == [(1, "live")]
    assert running_images(fake, "web-production") == ["shipbot/web:1", "shipbot/web:1"]


async def test_deploy_rolled_back_by_swarm(plane, fake):
    assert (await ship(plane, "web", "1")).ok
    fake.behave("web:2", UNHEALTHY)
    outcome = await ship(plane, "web", "2")
    assert not outcome.ok
    assert outcome.title == "deploy of web release 2 failed and was rolled back to release 1"
    assert outcome.details == [
        f"why: {PROBE_FAILED}",
        "web-production still runs release 1: 2 of 2 tasks running",
    ]
    assert outcome.log_tail == ["listening on :9999"]
    assert statuses(plane, "web") == [(2, "failed"), (1, "live")]
    assert running_images(fake, "web-production") == ["shipbot/web:1", "shipbot/web:1"]


async def test_deploy_of_a_server_that_exits_0_quotes_its_health_check(plane, fake):
    assert (await ship(plane, "web", "1")).ok
    fake.behave("web:2", EXITS_0)
    outcome = await ship(plane, "web", "2")
    assert outcome.title == "deploy of web release 2 failed and was rolled back to release 1"
    assert outcome.details[0] == f"why: {PROBE_FAILED}"


async def test_deploy_paused_when_the_rollback_fails_too(plane, fake):
    assert (await ship(plane, "web", "1")).ok
    fake.behave("web:1", UNHEALTHY)  # release 1 now fails as well: Swarm's rollback pauses
    fake.behave("web:2", UNHEALTHY)
    outcome = await ship(plane, "web", "2")
    # told from what Swarm runs afterwards, never "rolled back" nor "still runs release 1"
    assert outcome.title == (
        "deploy of web release 2 stalled, and the rollback to release 1 failed too"
    )
    assert outcome.fields["rollback"] == "failed"
    assert not any("still runs" in line for line in outcome.details), outcome.details
    assert outcome.details[-1].startswith("web-production runs release 1: 0 of 2 tasks")
    assert fake.inspect_service("web-production")["UpdateStatus"]["State"] == "rollback_paused"
    assert statuses(plane, "web") == [(2, "failed"), (1, "superseded")]


async def test_deploy_timeout_puts_the_live_release_back(plane, fake):
    assert (await ship(plane, "plain", "1")).ok
    fake.behave("web:2", STUCK)
    outcome = await ship(plane, "plain", "2")
    assert outcome.title == (
        "deploy of plain release 2 did not become healthy in time and was rolled back to release 1"
    )
    assert outcome.details == [
        "why: no task of the new release became healthy in time",
        "plain-production still runs release 1: 2 of 2 tasks running",
    ]
    assert statuses(plane, "plain") == [(2, "failed"), (1, "live")]
    assert running_images(fake, "plain-production") == ["shipbot/plain:1"] * 2


async def test_first_deploy_failing_removes_its_service(plane, fake):
    fake.behave("web:1", UNHEALTHY)
    events = await drain(deploy(plane, await resolve(plane, "web", None, "1"), user="u:1"))
    outcome = outcome_of(events)
    assert outcome.title == "deploy of web release 1 failed; no earlier release to roll back to"
    assert "removing web-production: its first release never became healthy" in [
        e.text for e in events if isinstance(e, Progress)
    ]
    assert fake.inspect_service("web-production") is None
    assert statuses(plane, "web") == [(1, "failed")]


async def test_deploy_survives_two_failed_looks(plane, fake):
    assert (await ship(plane, "web", "1")).ok
    events = []
    async for event in deploy(plane, await resolve(plane, "web", None, "2"), user="u:1"):
        events.append(event)
        if isinstance(event, Progress) and event.text.startswith("updating"):
            fake.fail_next(1, "inspect_service")
            timed_out = DeployError("listing tasks: context deadline exceeded")
            fake.fail_next(1, "tasks", error=timed_out)
    assert outcome_of(events).title == "web release 2 is live on production"
    # one outage (two failed looks, no good one between), told once
    assert [e.text for e in events if "lost the engine" in getattr(e, "text", "")] == [
        "lost the engine for a moment (the Docker engine stopped answering (fake outage)); "
        "looking again"
    ]
    assert statuses(plane, "web") == [(2, "live"), (1, "superseded")]


async def lose_engine_mid_rollout(plane: Plane, fake: FakeSwarm) -> Outcome:
    events = []
    async for event in deploy(plane, await resolve(plane, "web", None, "2"), user="u:1"):
        events.append(event)
        if isinstance(event, Progress) and "tasks up on" in event.text:
            fake.down = True
    return outcome_of(events)


async def test_engine_gone_leaves_the_release_unknown_then_reconcile_marks_it_live(plane, fake):
    assert (await ship(plane, "web", "1")).ok
    outcome = await lose_engine_mid_rollout(plane, fake)
    assert outcome.title == "the outcome of web release 2 on production is unknown"
    assert outcome.details == [
        "why: inspect_service: the Docker engine stopped answering (fake)",
        "Swarm carries on with the rollout by itself; `status` and `releases` read what it "
        "runs and record it",
    ]
    assert statuses(plane, "web") == [(2, "unknown"), (1, "live")]
    fake.down = False
    fake.settle()  # Swarm carried on by itself
    decided = await reconcile.reconcile(plane)
    assert [(r.number, verdict) for r, verdict in decided] == [(2, "live")]
    assert statuses(plane, "web") == [(2, "live"), (1, "superseded")]


async def test_reconcile_marks_unknown_failed_when_swarm_rolled_it_back(plane, fake):
    assert (await ship(plane, "web", "1")).ok
    fake.behave("web:2", UNHEALTHY)
    await lose_engine_mid_rollout(plane, fake)
    fake.down = False
    fake.settle()
    decided = await reconcile.reconcile(plane)
    assert [(r.number, verdict) for r, verdict in decided] == [(2, "failed")]
    assert statuses(plane, "web") == [(2, "failed"), (1, "live")]


async def test_rollback_operation(plane, fake):
    assert (await ship(plane, "web", "1")).ok
    assert (await ship(plane, "web", "2")).ok
    outcome = outcome_of(await drain(rollback.rollback(plane, "web", "production", user="u:1")))
    assert outcome.ok and outcome.title == "web is back on release 1 (production)"
    assert statuses(plane, "web") == [(2, "superseded"), (1, "live")]
    assert running_images(fake, "web-production") == ["shipbot/web:1", "shipbot/web:1"]


async def test_scale_and_restart(plane, fake):
    assert (await ship(plane, "web", "1")).ok
    scaled = outcome_of(await drain(adjust.scale(plane, "web", "production", 4, user="u:1")))
    assert scaled.ok and scaled.title == "web (production) scaled to 4"
    assert scaled.details == ["app.yml still sets its own count: the next deploy applies it"]
    assert running_images(fake, "web-production") == ["shipbot/web:1"] * 4
    before = {t["ID"] for t in fake.tasks("web-production") if t["DesiredState"] == "running"}
    restarted = outcome_of(await drain(adjust.restart(plane, "web", "production", user="u:1")))
    assert restarted.ok and restarted.title == "web (production) restarted, 4 tasks replaced"
    after = {t["ID"] for t in fake.tasks("web-production") if t["DesiredState"] == "running"}
    assert len(after) == 4 and not before & after


async def test_restart_that_fails_is_reported(plane, fake):
    assert (await ship(plane, "web", "1")).ok
    fake.behave("web:1", EXITS_0)
    outcome = outcome_of(await drain(adjust.restart(plane, "web", "production", user="u:1")))
    assert outcome.title == "restart of web (production) did not converge"
    assert outcome.details == [f"why: {PROBE_FAILED}"]


async def test_a_release_keeps_its_spec_sealed_and_swarm_gets_it_open(plane, fake):
    plane.store.set_variable(
        app="web",
        env="production",
        key="TOKEN",
        value=plane.vault.encrypt("s3cr3t-value"),
        secret=True,
        updated_by="u:1",
    )
    assert (await ship(plane, "web", "1")).ok
    stored = plane.store.live_release("web", "production").spec
    running = fake.inspect_service("web-production")["Spec"]
    assert running["TaskTemplate"]["ContainerSpec"]["Env"] == ["TOKEN=s3cr3t-value"]
    assert stored["TaskTemplate"]["ContainerSpec"]["Env"][0].startswith(f"TOKEN={SEALED}")
    assert "s3cr3t" not in str(stored)
    assert unseal(stored, plane.vault.decrypt) == running


async def test_build_passes_its_target_and_args(plane, fake, tmp_path):
    folder = tmp_path / "built"
    folder.mkdir()
    (folder / "Dockerfile").write_text("FROM busybox AS runtime\n")
    (folder / "app.yml").write_text(
        "name: built\nbuild: {context: ., target: runtime, args: {MODE: prod}}\n"
    )
    register(plane.store, App("built", "path", str(folder), None, "console:alice", time.time()))
    outcome = outcome_of(
        await drain(deploy(plane, await resolve(plane, "built", None, None), user="u:1"))
    )
    assert outcome.title == "built release 1 is live on production"
    assert fake.builds == [
        {
            "context": str(folder),
            "dockerfile": "Dockerfile",
            "tag": "shipbot/built:1",
            "buildargs": {"MODE": "prod"},
            "labels": {"shipbot.release": "1"},
            "target": "runtime",
            "memory": None,
            "timeout": 1800.0,
        }
    ]


# the real engine tells the same story as the fake
EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "hello"
TRAPS_TERM = """\
command: ["sh", "-c", "trap 'exit 0' TERM; while true; do sleep 0.2; done"]
"""


@pytest.mark.docker
async def test_real_server_exiting_0_on_sigterm_is_explained(docker_client, tmp_path, made_apps):
    name = f"t{uuid.uuid4().hex[:8]}"
    folder = tmp_path / name
    shutil.copytree(EXAMPLE, folder)
    yml = folder / "app.yml"
    good = yml.read_text().replace("name: hello", f"name: {name}")
    yml.write_text(good)
    home = tmp_path / "home"
    home.mkdir()
    (home / "shipbot.yml").write_text("admins: [console:alice]\n")
    made_apps.append(name)
    bot = Dispatcher.open(home)
    try:
        assert result(await say(bot, f"apps add {name} --path {folder}")).ok
        assert result(await say(bot, f"deploy {name} --env staging")).ok
        yml.write_text(good + TRAPS_TERM)  # no httpd: the check fails, TERM ends it with 0
        outcome = result(await say(bot, f"deploy {name} --env staging"))
    finally:
        bot.close()
    assert outcome.title == f"deploy of {name} release 2 failed and was rolled back to release 1"
    assert outcome.details[0] == f"why: {PROBE_FAILED}"
    assert outcome.details[1] == f"{name}-staging still runs release 1: 1 of 1 task running"


async def test_a_failed_rollback_says_what_swarm_runs_afterwards(plane, fake):
    assert (await ship(plane, "web", "1")).ok
    assert (await ship(plane, "web", "2")).ok
    fake.behave("web:1", UNHEALTHY)  # release 1 cannot come back: Swarm keeps release 2
    outcome = outcome_of(await drain(rollback.rollback(plane, "web", "production", user="u:1")))
    assert outcome.title == "rollback of web to release 1 failed; it still runs release 2"
    assert outcome.details[-1] == "web-production runs release 2: 2 of 2 tasks running"
    assert running_images(fake, "web-production") == ["shipbot/web:2", "shipbot/web:2"]
    assert statuses(plane, "web") == [(2, "live"), (1, "superseded")]


async def test_a_rollback_to_a_pruned_image_fails_before_touching_the_service(plane, fake):
    assert (await ship(plane, "web", "1")).ok
    fake.behave("web:2", UNHEALTHY)
    fake.images.pop("shipbot/web:1")  # pruned: the deploy's recovery cannot start it again
    outcome = await ship(plane, "web", "2")
    assert outcome.title == "deploy of web release 2 failed and was rolled back to release 1"
    assert statuses(plane, "web") == [(2, "failed"), (1, "live")]


async def test_a_failed_build_uses_no_release_number(plane, fake, tmp_path):
    """Numbers go to releases that were built: a build that fails gives its number back,
    and its deployment row keeps the failure with no release."""
    folder = tmp_path / "broken"
    folder.mkdir()
    (folder / "Dockerfile").write_text("FROM busybox\nRUN false\n")
    (folder / "app.yml").write_text("name: broken\nbuild: .\n")
    register(plane.store, App("broken", "path", str(folder), None, "console:alice", time.time()))
    fake.build_log = [{"error": "The command '/bin/sh -c false' returned a non-zero code: 1"}]
    with pytest.raises(BuildError, match="returned a non-zero code: 1"):
        await drain(deploy(plane, await resolve(plane, "broken", None, None), user="u:1"))
    assert statuses(plane, "broken") == []
    failed = plane.store.db.execute(
        "SELECT kind, status, release FROM deployments WHERE app = 'broken'"
    ).fetchall()
    assert failed == [("deploy", "failed", None)]
    fake.build_log = [{"stream": "Step 1/1 : FROM busybox\n"}]
    outcome = outcome_of(
        await drain(deploy(plane, await resolve(plane, "broken", None, None), user="u:1"))
    )
    assert outcome.title == "broken release 1 is live on production"
    assert statuses(plane, "broken") == [(1, "live")]
