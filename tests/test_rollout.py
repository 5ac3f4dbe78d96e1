"""Every rollout verdict, against the in-memory swarm: no engine, no real time.

The deadline's clock is the fake swarm's (one second per look at the tasks), so a timeout
is a number of Swarm steps, not a wait. The operations that end in these verdicts are in
test_deploy_fake.py.
"""

from __future__ import annotations

from typing import Any

import pytest
from cryptography.fernet import Fernet

from core.appspec import parse_app_config
from core.deploy.seal import SEALED, seal, unseal
from core.deploy.spec import service_spec
from core.deploy.verdicts import failure_title, rollback_to
from core.errors import DeployError, EngineUnavailable
from core.events import Progress
from core.secrets import Vault
from core.store import Release
from core.swarm import rollout
from core.swarm.testing import EXITS_0, STUCK, UNHEALTHY, FakeSwarm
from tests.clock import SwarmSteps
from tests.fake_plane import CHECK, PROBE_FAILED, WEB, drain, fast_swarm, running_images


@pytest.fixture
def fake() -> FakeSwarm:
    return fast_swarm()


# rollout.wait on its own
def posted(fake: FakeSwarm, image: str, *, pause: bool = False, create: bool = False) -> Any:
    """Post web's spec at ``image`` (as an update of web:1 unless ``create``); its Target."""
    spec = service_spec(parse_app_config(WEB).base, "production", 2, image)
    if pause:
        spec["UpdateConfig"]["FailureAction"] = "pause"
    if create:
        fake.create_service(spec)
        return rollout.Target("web-production", image, 2, 0, False, None)
    fake.create_service(service_spec(parse_app_config(WEB).base, "production", 1, "web:1"))
    fake.settle()
    fake.tasks("web-production")  # the create's tasks come up
    before = rollout.update_started(fake.inspect_service("web-production"))
    fake.update_service(spec)
    return rollout.Target("web-production", image, 2, 0, True, before)


async def verdict(fake: FakeSwarm, target: rollout.Target, deadline: float = 60) -> Any:
    events = await drain(rollout.wait(fake, target, deadline, SwarmSteps(fake)))
    assert all(isinstance(e, Progress) for e in events[:-1])
    return events[-1]


async def test_wait_converged(fake):
    result = await verdict(fake, posted(fake, "web:2"))
    assert (result.state, result.failed_task) == ("converged", None)
    assert running_images(fake, "web-production") == ["web:2", "web:2"]


async def test_wait_rolled_back_by_swarm_names_the_failed_task(fake):
    fake.behave("web:2", UNHEALTHY)
    result = await verdict(fake, posted(fake, "web:2"))
    assert result.state == "rolled_back"
    assert result.failed_task["Status"]["Err"] == (
        "task: non-zero exit (137): dockerexec: unhealthy container"
    )
    assert fake.inspect_service("web-production")["UpdateStatus"]["State"] == "rollback_completed"
    assert running_images(fake, "web-production") == ["web:1", "web:1"]


async def test_wait_paused(fake):
    fake.behave("web:2", UNHEALTHY)
    result = await verdict(fake, posted(fake, "web:2", pause=True))
    assert result.state == "paused"
    assert result.failed_task["Spec"]["ContainerSpec"]["Image"] == "web:2"


async def test_wait_timeout_on_the_swarm_clock(fake):
    fake.behave("web:2", STUCK)
    target = posted(fake, "web:2")
    started = fake.now
    result = await verdict(fake, target, deadline=30)
    assert (result.state, result.failed_task) == ("timeout", None)
    assert 30 < fake.now - started <= 32  # one look past the deadline, no more


async def test_wait_failed_create(fake):
    fake.behave("web:2", UNHEALTHY)
    result = await verdict(fake, posted(fake, "web:2", create=True))
    assert result.state == "failed"
    assert result.failed_task["Status"]["State"] == "failed"


async def test_wait_retries_transient_errors(fake):
    target = posted(fake, "web:2")
    fake.fail_next(1, "inspect_service")
    timed_out = DeployError("listing tasks of web-production: context deadline exceeded")
    fake.fail_next(1, "tasks", error=timed_out)
    events = await drain(rollout.wait(fake, target, 60, SwarmSteps(fake)))
    assert events[-1].state == "converged"
    lost = [e.text for e in events[:-1] if "lost the engine" in e.text]
    assert lost == [
        "lost the engine for a moment (the Docker engine stopped answering (fake outage)); "
        "looking again"
    ]


async def test_wait_raises_other_errors_at_once(fake):
    target = posted(fake, "web:2")
    fake.fail_next(1, "tasks", error=DeployError("listing tasks of web-production: forbidden"))
    with pytest.raises(DeployError, match="forbidden"):
        await drain(rollout.wait(fake, target, 60, SwarmSteps(fake)))


async def test_wait_raises_when_the_engine_stays_away(fake):
    target = posted(fake, "web:2")
    fake.down = True
    started = fake.now
    with pytest.raises(EngineUnavailable):
        await drain(rollout.wait(fake, target, 10, SwarmSteps(fake)))
    assert fake.now - started >= 10  # it tried until the deadline


async def test_server_exiting_0_on_sigterm_is_found_and_explained(fake):
    fake.behave("web:2", EXITS_0)
    result = await verdict(fake, posted(fake, "web:2"))
    assert result.state == "rolled_back"
    task = result.failed_task
    assert (task["Status"]["State"], task["Status"]["ContainerStatus"]["ExitCode"]) == (
        "complete",
        0,
    )
    reason, tail = rollout.explain(fake, task)
    assert reason == PROBE_FAILED
    assert tail == ["listening on :9999", "SIGTERM: shutting down"]


async def test_explain_quotes_the_probe_not_the_probe_the_kill_cut_short(fake):
    fake.behave("web:2", UNHEALTHY)
    task = (await verdict(fake, posted(fake, "web:2"))).failed_task
    container = fake.containers[task["Status"]["ContainerStatus"]["ContainerID"]]
    container["State"]["Health"]["Log"].append({"ExitCode": 137, "Output": ""})
    reason, _ = rollout.explain(fake, task)
    assert reason.startswith(f"health check `{CHECK}` failed (exit 1): wget: can't connect")


def test_explain_without_a_task():
    assert rollout.explain(FakeSwarm(), None) == (
        "no task of the new release became healthy in time",
        [],
    )


# pure builders: verdict words, rollback target, sealing
@pytest.mark.parametrize(
    ("state", "live", "title"),
    [
        ("rolled_back", 3, "deploy of api release 4 failed and was rolled back to release 3"),
        ("failed", None, "deploy of api release 4 failed; no earlier release to roll back to"),
        ("paused", 3, "deploy of api release 4 stalled and was rolled back to release 3"),
        (
            "timeout",
            None,
            "deploy of api release 4 did not become healthy in time; no earlier release to roll "
            "back to",
        ),
        (
            "unknown",
            3,
            "deploy of api release 4 has an unknown outcome and was rolled back to release 3",
        ),
    ],
)
def test_failure_title(state, live, title):
    assert failure_title("api", 4, state, live) == title


def release(number: int, status: str, spec: dict | None = None) -> Release:
    return Release(
        id=number * 10,
        app="api",
        env="production",
        number=number,
        image=f"shipbot/api:{number}",
        image_id=None,
        source_ref=None,
        spec={"Name": "api-production"} if spec is None else spec,
        status=status,
        deployed_by="u:1",
        created_at=0.0,
        finished_at=None,
        message=None,
    )


RELEASES = [
    release(5, "failed"),
    release(4, "live"),
    release(3, "failed"),
    release(2, "unknown"),
    release(1, "superseded"),
]


def test_rollback_to_the_newest_good_release_before_live():
    assert rollback_to("api", "production", RELEASES[1], None, RELEASES).number == 2


def test_rollback_to_a_chosen_release():
    assert rollback_to("api", "production", RELEASES[1], 1, RELEASES).number == 1


@pytest.mark.parametrize(
    ("number", "releases", "message"),
    [
        (3, RELEASES, "release 3 of api failed its deploy; pick another"),
        (4, RELEASES, "release 4 is already live on production"),
        (9, RELEASES, "api has no release 9 on production: see `releases api`"),
        (1, [release(1, "superseded", {})], "api has no release 1 on production: see"),
        (None, RELEASES[:3], "api has no earlier good release on production to roll back to"),
    ],
)
def test_rollback_to_refuses(number, releases, message):
    with pytest.raises(DeployError) as caught:
        rollback_to("api", "production", RELEASES[1], number, releases)
    assert str(caught.value).startswith(message)


def test_seal_round_trip_is_exact():
    vault = Vault(Fernet.generate_key())
    spec = service_spec(
        parse_app_config("name: a\nimage: a:1\nenv: {PLAIN: x=y, TOKEN: s3cr3t-value}\n").base,
        "production",
        1,
        "shipbot/a:1",
    )
    sealed = seal(spec, {"TOKEN"}, vault.encrypt)
    env = sealed["TaskTemplate"]["ContainerSpec"]["Env"]
    assert env[0] == "PLAIN=x=y"
    assert env[1].startswith(f"TOKEN={SEALED}") and "s3cr3t" not in env[1]
    assert {**sealed, "TaskTemplate": spec["TaskTemplate"]} == spec  # only the env changed
    assert unseal(sealed, vault.decrypt) == spec
    assert spec["TaskTemplate"]["ContainerSpec"]["Env"] == ["PLAIN=x=y", "TOKEN=s3cr3t-value"]
