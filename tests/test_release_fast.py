"""The release command on the fake swarm: app.yml's ``release:`` validated, the job's spec
built exactly, and a deploy that runs it once before the service changes (or stops there)."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from core.appspec import parse_app_config
from core.config import BuildConfig, ConfigError, load_config
from core.deploy.build import memory_hint
from core.deploy.deploy import deploy, plan
from core.deploy.release_job import ReleaseCommandFailed
from core.deploy.resolve import resolve
from core.errors import AppSpecError
from core.events import LogLine, Progress
from core.plane import Plane
from core.process import this_process
from core.secrets import MASK, Vault
from core.store import App, Store
from core.swarm.jobs import LogCursor, job_labels, job_name, job_spec
from core.swarm.servers import Servers
from core.swarm.testing import Behaviour, FakeSwarm
from tests.clock import SwarmSteps
from tests.fake_plane import drain, fast_swarm, outcome_of, running_images
from tests.fast_plane import register

SECRET = "sk-live-0123456789"
APP = """\
name: mig
image: web:1
replicas: 2
env: {MODE: web}
volumes: ["data:/data"]
release: [python, manage.py, migrate]
"""


@pytest.fixture
def fake() -> FakeSwarm:
    swarm = fast_swarm()
    return swarm


@pytest.fixture
def plane(tmp_path: Path, fake: FakeSwarm) -> AsyncIterator[Plane]:
    store = Store(tmp_path / "shipbot.db")
    folder = tmp_path / "mig"
    folder.mkdir()
    (folder / "app.yml").write_text(APP)
    register(store, App("mig", "path", str(folder), None, "console:alice", time.time()))
    vault = Vault(Fernet.generate_key())
    store.set_variable(
        app="mig",
        env="production",
        key="API_KEY",
        value=vault.encrypt(SECRET),
        secret=True,
        updated_by="console:alice",
    )
    yield Plane(store, vault, Servers({"local": lambda: fake}), tmp_path, clock=SwarmSteps(fake))
    store.close()


def statuses(plane: Plane) -> list[tuple[int, str]]:
    return [(r.number, r.status) for r in plane.store.releases("mig", "production")]


def test_release_shorthand_and_long_form():
    short = parse_app_config("name: a\nimage: x\nrelease: [python, manage.py, migrate]\n")
    assert short.base.release is not None
    assert short.base.release.command == ["python", "manage.py", "migrate"]
    assert short.base.release.timeout == 600 * 10**9
    long = parse_app_config("name: a\nimage: x\nrelease: {command: [sh, -c, 'x'], timeout: 30s}\n")
    assert long.base.release is not None and long.base.release.timeout == 30 * 10**9


@pytest.mark.parametrize(
    ("text", "error"),
    [
        (
            'release: "python manage.py migrate"',
            "release.command: expected argv (a list of strings) such as [python, manage.py, "
            "migrate], got the string 'python manage.py migrate'; for a shell write "
            "[sh, -c, 'python manage.py migrate']",
        ),
        ("release: []", "release.command: expected a non-empty list of strings (argv), got []"),
        ("release: [['a']]", "release.command: argument 0 must be a string, got ['a']"),
        ("release: {command: [a], timeout: 0s}", "release.timeout: must be between 1s and 6h"),
        ("release: {command: [a], every: 1}", "release.every: unknown key"),
        (
            "environments: {staging: {release: ['']}}",
            "environments.staging.release.command: the program (argument 0) is empty",
        ),
    ],
)
def test_release_errors_name_the_field(text, error):
    with pytest.raises(AppSpecError) as caught:
        parse_app_config(f"name: a\nimage: x\n{text}\n")
    assert error in str(caught.value)


def test_job_spec_is_the_service_run_once():
    service = {
        "Name": "mig-production",
        "Labels": {"shipbot.app": "mig"},
        "TaskTemplate": {
            "ContainerSpec": {
                "Image": "shipbot/mig:2",
                "Labels": {"shipbot.app": "mig"},
                "Env": ["MODE=web"],
                "Args": ["serve"],
                "Healthcheck": {"Test": ["CMD", "true"]},
                "Mounts": [{"Type": "volume", "Source": "mig-production-data", "Target": "/d"}],
            },
            "RestartPolicy": {"Condition": "any", "MaxAttempts": 0},
            "Networks": [{"Target": "shipbot"}],
            "Resources": {"Limits": {"MemoryBytes": 1 << 28}},
            "ForceUpdate": 3,
        },
        "Mode": {"Replicated": {"Replicas": 2}},
    }
    labels = job_labels("mig", "production", "release")
    name = job_name("mig-production", "release", 2)
    assert name == "mig-production_release-2"
    assert job_spec(service, name, ["python", "manage.py", "migrate"], labels) == {
        "Name": "mig-production_release-2",
        "Labels": {
            "shipbot.job.app": "mig",
            "shipbot.job.env": "production",
            "shipbot.job.kind": "release",
            # the process that runs it: a crash's leftover is told from live work
            "shipbot.owner": this_process(),
        },
        "TaskTemplate": {
            "ContainerSpec": {
                "Image": "shipbot/mig:2",
                "Labels": {**labels, "shipbot.owner": this_process()},
                "Env": ["MODE=web"],
                "Args": ["python", "manage.py", "migrate"],
                "Mounts": [{"Type": "volume", "Source": "mig-production-data", "Target": "/d"}],
            },
            "RestartPolicy": {"Condition": "none", "MaxAttempts": 1},
            "Networks": [{"Target": "shipbot"}],
            "Resources": {"Limits": {"MemoryBytes": 1 << 28}},
        },
        "Mode": {"ReplicatedJob": {"MaxConcurrent": 1, "TotalCompletions": 1}},
        "UpdateConfig": None,
        "RollbackConfig": None,
        "EndpointSpec": {"Mode": "dnsrr"},
    }
    assert service["TaskTemplate"]["ContainerSpec"]["Args"] == ["serve"]  # not changed
    assert len(job_name("a" * 41 + "-" + "b" * 21, "run", 1733000000000)) <= 63


async def test_release_runs_once_before_the_service_with_env_and_secrets_masked(plane, fake):
    fake.job_handler = lambda argv, env: (0, [f"migrating with {env['API_KEY']}", "done"])
    events = await drain(deploy(plane, await resolve(plane, "mig", None, None), user="u:a"))
    assert outcome_of(events).ok
    assert [(name, argv) for name, argv, _ in fake.jobs] == [
        ("mig-production_release-1", ("python", "manage.py", "migrate"))
    ]
    env = fake.jobs[0][2]
    assert env["MODE"] == "web" and env["API_KEY"] == SECRET
    lines = [e.text for e in events if isinstance(e, LogLine)]
    assert lines == [f"migrating with {MASK}", "done"]
    created = [c for c in fake.calls if c == "create_service"]
    assert len(created) == 2
    job_created = fake.calls.index("create_service")
    assert "remove_service" in fake.calls[job_created:]  # the job, before the service
    removed = fake.calls.index("remove_service", job_created)
    assert fake.calls.index("create_service", removed) > removed
    assert fake.inspect_service("mig-production_release-1") is None
    assert fake.calls.count("remove_container") == 1  # Swarm would leave it holding /data
    assert len(fake.containers) == 2  # the app's two tasks only
    assert running_images(fake, "mig-production") == ["shipbot/mig:1"] * 2
    texts = [e.text for e in events if isinstance(e, Progress)]
    assert "running the release command `python manage.py migrate` on release 1" in texts


async def test_a_failing_release_command_stops_the_deploy_and_the_old_release_serves(plane, fake):
    first = await resolve(plane, "mig", None, None)
    assert outcome_of(await drain(deploy(plane, first, user="u:a"))).ok
    fake.job_handler = lambda argv, env: (3, ["relation users already exists", env["API_KEY"]])
    resolved = await resolve(plane, "mig", None, "2")
    with pytest.raises(ReleaseCommandFailed) as caught:
        await drain(deploy(plane, resolved, user="u:a"))
    assert str(caught.value) == (
        "the release command `python manage.py migrate` of mig failed: it exited with 3. "
        "Release 2 was not deployed; what ran before keeps serving"
    )
    assert caught.value.log_tail == ["relation users already exists", MASK]
    assert statuses(plane) == [(2, "failed"), (1, "live")]
    assert running_images(fake, "mig-production") == ["shipbot/mig:1"] * 2
    assert fake.inspect_service("mig-production_release-2") is None
    assert len(fake.jobs) == 2


async def test_a_release_command_past_its_timeout_stops_the_deploy(plane, fake, tmp_path):
    (tmp_path / "mig" / "app.yml").write_text(
        APP.replace(
            "release: [python, manage.py, migrate]", "release: {command: [sleep, 9], timeout: 1s}"
        )
    )
    fake.publish("web:1", Behaviour(start_steps=10**9))  # the job's task never finishes
    with pytest.raises(ReleaseCommandFailed) as caught:
        await drain(deploy(plane, await resolve(plane, "mig", None, None), user="u:a"))
    assert str(caught.value) == (
        "the release command `sleep 9` of mig failed: it did not finish within 1s and was "
        "stopped. Release 1 was not deployed; what ran before keeps serving"
    )
    assert caught.value.log_tail == ["(the command printed nothing)"]
    assert fake.inspect_service("mig-production_release-1") is None
    assert fake.inspect_service("mig-production") is None


def test_build_limits_are_configuration(tmp_path):
    (tmp_path / "shipbot.yml").write_text("build: {timeout_seconds: 600, memory: 2G}\n")
    limits = load_config(tmp_path).build
    assert (limits.timeout_seconds, limits.memory) == (600, 2 * 2**30)
    assert load_config(tmp_path / "nowhere").build == BuildConfig(timeout_seconds=1800)
    (tmp_path / "shipbot.yml").write_text("build: {timeout_seconds: 0, memory: lots}\n")
    with pytest.raises(ConfigError) as caught:
        load_config(tmp_path)
    assert "build.timeout_seconds: Input should be greater than 0" in str(caught.value)
    assert "build.memory: Value error, expected a size such as 256M or 1G" in str(caught.value)


async def test_builds_get_the_limits(plane, fake, tmp_path):
    folder = tmp_path / "built"
    folder.mkdir()
    (folder / "Dockerfile").write_text("FROM busybox\n")
    (folder / "app.yml").write_text("name: built\nbuild: .\n")
    register(plane.store, App("built", "path", str(folder), None, "u:a", time.time()))
    plane.build = BuildConfig(timeout_seconds=90, memory=256 * 2**20)
    assert outcome_of(
        await drain(deploy(plane, await resolve(plane, "built", None, None), user="u:a"))
    ).ok
    assert [(b["memory"], b["timeout"]) for b in fake.builds] == [(256 * 2**20, 90)]


def test_a_killed_step_under_a_memory_limit_names_the_limit():
    error = "The command '/bin/sh -c make' returned a non-zero code: 137"
    assert memory_hint(error, BuildConfig(memory=512 * 2**20)) == (
        " (a build step was killed: it may have needed more than the 512 MiB shipbot.yml "
        "build.memory allows)"
    )
    assert memory_hint(error, BuildConfig()) == ""
    assert memory_hint("returned a non-zero code: 2", BuildConfig(memory=1)) == ""


async def test_the_dry_run_names_the_release_command(plane, fake):
    lines = await plan(plane, await resolve(plane, "mig", None, None))
    assert lines[:3] == [
        f"release 1 (image web@{fake.registry['web:1'][0]})",  # pinned to what it serves
        f"digest {(await resolve(plane, 'mig', None, None)).digest}",
        "release command python manage.py migrate",
    ]
    assert fake.jobs == []  # nothing ran


def test_the_log_cursor_shows_each_line_once_across_polls():
    cursor = LogCursor()
    a, b = "2026-11-23T20:57:19.474900879Z", "2026-11-23T20:57:19.5Z"
    assert cursor.fresh([(a, "t", "one"), (a, "t", "two")]) == ["one", "two"]
    # the next poll reads them again, with more at the same stamp and a later one
    again = [(a, "t", "one"), (a, "t", "two"), (a, "t", "three"), (b, "t", "four")]
    assert cursor.fresh(again) == ["three", "four"]
    assert cursor.fresh(again) == []
    # a poll whose window (tail) no longer holds the first lines
    assert cursor.fresh([(b, "t", "four"), ("2026-11-23T20:57:20Z", "t", "five")]) == ["five"]
