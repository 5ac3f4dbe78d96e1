"""Helpers and jobs a crash left behind, swept on in-memory swarms: only this control
plane's, only those older than the bound, on every server that answers."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from core.data.db_spec import LABEL_DB
from core.data.volumes import LABEL_HELPER
from core.names import LABEL_APP, LABEL_ENV, LABEL_PLANE
from core.plane import Plane
from core.process import LABEL_OWNER, gone, identity, start_time, this_process
from core.secrets import Vault
from core.store import Store
from core.store.backups import BACKUP_INTERRUPTED
from core.swarm.jobs import LABEL_JOB_APP, LABEL_JOB_KIND, job_labels, job_name, job_spec
from core.swarm.servers import Servers
from core.swarm.testing import STUCK, FakeSwarm
from core.swarm.testing.orchestrator import stamp
from core.watch.sweep import AFTER_SECONDS, judge, leftovers, scratch_volumes, sweep_all
from tests.clock import SwarmSteps

NOW = 1_800_000_000.0
HOUR = 3600.0


def service(name: str, age: float, **labels: str) -> dict:
    return {"CreatedAt": stamp(NOW - age), "Spec": {"Name": name, "Labels": labels}}


def test_leftovers_are_this_planes_helpers_and_jobs_past_the_bound():
    ours = {LABEL_PLANE: "p1"}
    services = [
        service("web-production_release-4", 7 * HOUR, **ours, **{LABEL_JOB_KIND: "release"}),
        service("web-production_run-17", 7 * HOUR, **ours, **{LABEL_JOB_KIND: "run"}),
        service("volhelper-web-data", 7 * HOUR, **ours, **{LABEL_HELPER: "web-data"}),
        service("db-verify-orders-3", 7 * HOUR, **ours, **{LABEL_DB: "verify-orders-3"}),
        # a job running now, another plane's, one made before jobs carried the id
        service("web-production_run-18", HOUR, **ours, **{LABEL_JOB_KIND: "run"}),
        service("api-staging_run-2", 7 * HOUR, **{LABEL_PLANE: "p2", LABEL_JOB_KIND: "run"}),
        service("old-job_run-1", 7 * HOUR, **{LABEL_JOB_KIND: "run"}),
        # what is no helper: a database, an app
        service("db-orders", 7 * HOUR, **ours, **{LABEL_DB: "orders"}),
        service("web-production", 7 * HOUR, **ours, **{LABEL_APP: "web", LABEL_ENV: "p"}),
    ]
    assert leftovers(services, "p1", NOW, AFTER_SECONDS) == [
        "db-verify-orders-3",
        "volhelper-web-data",
        "web-production_release-4",
        "web-production_run-17",
    ]


def test_a_job_carries_its_service_planes_id():
    desired = {
        "Name": "web-production",
        "Labels": {LABEL_APP: "web", LABEL_PLANE: "p1"},
        "TaskTemplate": {"ContainerSpec": {"Image": "web:1"}},
    }
    spec = job_spec(
        desired,
        job_name("web-production", "release", 4),
        ["migrate"],
        job_labels("web", "production", "release"),
    )
    assert spec["Labels"] == {
        LABEL_JOB_APP: "web",
        "shipbot.job.env": "production",
        LABEL_JOB_KIND: "release",
        LABEL_PLANE: "p1",
        LABEL_OWNER: this_process(),
    }


@pytest.fixture
def swarms() -> dict[str, FakeSwarm]:
    return {"local": FakeSwarm(), "eu-1": FakeSwarm(), "eu-2": FakeSwarm()}


@pytest.fixture
def plane(tmp_path: Path, swarms: dict[str, FakeSwarm]) -> Iterator[Plane]:
    store = Store(tmp_path / "shipbot.db")
    servers = Servers({name: (lambda s=swarm: s) for name, swarm in swarms.items()})
    yield Plane(
        store, Vault(Fernet.generate_key()), servers, tmp_path, clock=SwarmSteps(swarms["local"])
    )
    store.close()


def left_job(swarm: FakeSwarm, name: str, plane_id: str) -> None:
    swarm.publish("web:1", STUCK)  # its task never ends: the process that waited on it died
    swarm.create_service(
        {
            "Name": name,
            "Labels": {LABEL_JOB_KIND: "release", LABEL_PLANE: plane_id},
            "TaskTemplate": {"ContainerSpec": {"Image": "web:1"}},
            "Mode": {"ReplicatedJob": {"MaxConcurrent": 1, "TotalCompletions": 1}},
        }
    )


async def test_every_server_is_swept_and_one_away_stops_none(plane, swarms):
    local, eu1, eu2 = swarms["local"], swarms["eu-1"], swarms["eu-2"]
    left_job(local, "web-production_release-4", plane.id)
    left_job(eu1, "api-production_release-9", plane.id)
    left_job(eu1, "api-production_release-8", "another-plane")
    eu2.down = True
    for swarm in swarms.values():
        swarm.now += 7 * HOUR  # hours later, shipbot starts again
    assert await sweep_all(plane, ["local", "eu-2", "eu-1"]) == {
        "local": ["web-production_release-4"],
        "eu-1": ["api-production_release-9"],
    }
    assert local.inspect_service("web-production_release-4") is None
    assert [s["Spec"]["Name"] for s in eu1.services_labelled(LABEL_JOB_KIND)] == [
        "api-production_release-8"
    ]
    # a fresh one (a job running now) is left alone
    left_job(local, "web-production_release-5", plane.id)
    assert await sweep_all(plane, ["local"]) == {"local": []}


def dead_owner() -> str:
    """The owner label of a process that ran and has stopped."""
    child = subprocess.Popen(["sleep", "30"])
    try:
        owner = identity(child.pid)
    finally:
        child.kill()
        child.wait()
    assert owner.endswith(f"/{child.pid}/" + owner.rsplit("/", 1)[1])
    return owner


def test_gone_tells_a_stopped_process_from_a_running_one():
    assert gone(this_process()) is False
    assert gone(dead_owner()) is True


def test_gone_cannot_tell_another_namespace_or_a_label_it_cannot_read():
    boot, namespace, pid, started = this_process().split("/")
    assert gone(f"{boot}/1/{pid}/{started}") is None  # another pid namespace
    assert gone(f"another-boot/{namespace}/{pid}/{started}") is None
    assert gone("not an owner") is None
    assert gone(f"{boot}/{namespace}/{pid}/1") is True  # the pid is used by a later process


def test_start_time_reads_past_a_command_name_with_spaces_and_parentheses(tmp_path):
    (tmp_path / "42").mkdir()
    fields = " ".join(str(n) for n in range(3, 23))  # fields 3..22: the 22nd is "22"
    (tmp_path / "42" / "stat").write_text(f"42 (a (b) c) {fields}\n")
    assert start_time(42, tmp_path) == "22"
    assert start_time(43, tmp_path) is None


def test_an_owner_that_stopped_is_swept_at_once_one_that_runs_never_and_unknown_by_age():
    ours = {LABEL_PLANE: "p1", LABEL_JOB_KIND: "run"}

    def dead(labels: dict) -> bool | None:  # "u": cannot tell (None)
        return {"d": True, "a": False}.get(labels[LABEL_OWNER])

    services = [
        service("stopped_run-1", 60, **ours, **{LABEL_OWNER: "d"}),
        service("running_run-2", 7 * HOUR, **ours, **{LABEL_OWNER: "a"}),
        service("elsewhere_run-3", HOUR, **ours, **{LABEL_OWNER: "u"}),
        service("elsewhere_run-4", 7 * HOUR, **ours, **{LABEL_OWNER: "u"}),
        service("theirs_run-5", 60, **{LABEL_PLANE: "p2", LABEL_JOB_KIND: "run", LABEL_OWNER: "d"}),
    ]
    assert leftovers(services, "p1", NOW, AFTER_SECONDS, dead) == [
        "elsewhere_run-4",
        "stopped_run-1",
    ]


def mounting(name: str, volume: str) -> dict:
    mounts = [{"Type": "volume", "Source": volume}]
    return {"Spec": {"Name": name, "TaskTemplate": {"ContainerSpec": {"Mounts": mounts}}}}


def test_scratch_volumes_are_this_planes_that_no_scratch_service_mounts():
    def volume(name: str, **labels: str) -> dict:
        return {"Name": name, "Labels": labels}

    volumes = [
        volume("db-verify-orders-3-data", **{LABEL_PLANE: "p1", LABEL_DB: "verify-orders-3"}),
        volume("db-verify-orders-4-data", **{LABEL_PLANE: "p1", LABEL_DB: "verify-orders-4"}),
        volume("db-verify-orders-5-data", **{LABEL_PLANE: "p2", LABEL_DB: "verify-orders-5"}),
        volume("db-orders-data", **{LABEL_PLANE: "p1", LABEL_DB: "orders"}),
    ]
    services = [mounting("db-verify-orders-4", "db-verify-orders-4-data")]
    assert scratch_volumes(volumes, services, "p1") == ["db-verify-orders-3-data"]


def owned_service(swarm: FakeSwarm, name: str, labels: dict, volume: str | None = None) -> None:
    swarm.publish("web:1", STUCK)
    container: dict = {"Image": "web:1"}
    if volume:
        options = {"Labels": {LABEL_DB: labels[LABEL_DB], LABEL_PLANE: labels[LABEL_PLANE]}}
        container["Mounts"] = [{"Type": "volume", "Source": volume, "VolumeOptions": options}]
    swarm.create_service(
        {
            "Name": name,
            "Labels": labels,
            "TaskTemplate": {"ContainerSpec": container},
            "Mode": {"ReplicatedJob": {"MaxConcurrent": 1, "TotalCompletions": 1}},
        }
    )


async def test_what_a_killed_shipbot_left_is_swept_at_once_and_recorded_interrupted(plane, swarms):
    local, store = swarms["local"], plane.store
    owner = dead_owner()
    pid = int(owner.split("/")[2])
    plane_labels = {LABEL_PLANE: plane.id, LABEL_OWNER: owner}
    release = {**job_labels("web", "production", "release"), **plane_labels}
    run = {**job_labels("web", "production", "run"), **plane_labels}
    owned_service(local, "web-production_release-4", release)
    owned_service(local, "web-production_run-17", run)
    owned_service(local, "shipbot-volume-1a", {LABEL_HELPER: "web-production-data", **plane_labels})
    scratch = {LABEL_DB: "verify-orders-3", **plane_labels}
    owned_service(local, "db-verify-orders-3", scratch, "db-verify-orders-3-data")
    local.remove_service("db-verify-orders-3")  # the verify removed it, then was killed
    # what this very process runs now: never swept, however old
    mine = {**run, LABEL_OWNER: this_process()}
    owned_service(local, "web-production_run-18", mine)
    local.now += 7 * HOUR
    deployment = store.start_deployment(app="web", env="production", kind="deploy", started_by="a")
    store.db["deployments"].update(deployment, {"pid": pid})
    backup = store.start_backup("web/production/data", "volume", "k", "a", NOW)
    other = store.start_backup("orders", "postgres", "k2", "a", NOW)  # another's: runs on
    # both locks still beat: the killed process's lock has not timed out yet, so its
    # backup is told by its helper's owner, not by the lock
    for key in ("db/web/production/data", "db/orders"):
        store.acquire_lock(key, owner="u:a", what="backup", ttl=60.0, host="h")
        store.db["locks"].update(key, {"heartbeat_at": local.now})

    def containers(name: str) -> set[str]:
        return {t["Status"]["ContainerStatus"]["ContainerID"] for t in local.tasks(name)}

    killed = containers("web-production_release-4") | containers("web-production_run-17")
    assert killed and killed <= set(local.containers)
    assert await sweep_all(plane, ["local"]) == {
        "local": [
            "shipbot-volume-1a",
            "web-production_release-4",
            "web-production_run-17",
            "db-verify-orders-3-data",
        ]
    }
    assert [s["Spec"]["Name"] for s in local.services_labelled(LABEL_JOB_KIND)] == [
        "web-production_run-18"
    ]
    assert local.inspect_volume("db-verify-orders-3-data") is None
    assert not killed & set(local.containers)  # a job's containers go with it
    assert containers("web-production_run-18") <= set(local.containers)
    assert store.deployment(deployment)["status"] == "interrupted"
    assert store.backup(backup)["status"] == BACKUP_INTERRUPTED
    assert store.backup(other)["status"] == "running"
    audit = [(r["command"], r["result"], r["app"]) for r in reversed(store.audit_log())]
    assert audit == [
        ("sweep shipbot-volume-1a on local", "interrupted", None),
        ("sweep web-production_release-4 on local", "interrupted", "web"),
        ("sweep web-production_run-17 on local", "interrupted", "web"),
        ("sweep db-verify-orders-3-data on local", "interrupted", None),
    ]


def test_a_maker_in_another_namespace_is_judged_by_its_operations_lock(plane):
    store, now, ttl = plane.store, plane.clock.time(), 60.0
    boot, _, pid, started = this_process().split("/")
    elsewhere = {LABEL_OWNER: f"{boot}/1/{pid}/{started}"}  # a pid namespace we cannot see
    store.acquire_lock("api/production", owner="u:a", what="deploy", ttl=ttl, host="h")
    store.acquire_lock("db/orders", owner="u:a", what="verify", ttl=ttl, host="h")
    store.acquire_lock("web/production", owner="u:a", what="run", ttl=ttl, host="h")
    store.db["locks"].update("web/production", {"heartbeat_at": now - 2 * ttl})
    store.start_backup("shop/production/data", "volume", "k", "a", now)
    dead = judge(store, now, ttl)
    assert dead({**job_labels("api", "production", "release"), **elsewhere}) is False
    assert dead({**job_labels("web", "production", "run"), **elsewhere}) is True  # stale
    assert dead({**job_labels("cms", "production", "run"), **elsewhere}) is True  # none
    assert dead({LABEL_DB: "verify-orders-3", **elsewhere}) is False
    assert dead({LABEL_DB: "verify-users-3", **elsewhere}) is True
    assert dead({LABEL_HELPER: "shop-production-data", **elsewhere}) is True
    # a helper whose backup row is not written yet: its lock is unknown, the age decides
    assert dead({LABEL_HELPER: "blog-production-data", **elsewhere}) is None
    assert dead(job_labels("api", "production", "run")) is None  # made before the label
    assert dead({**job_labels("api", "production", "run"), LABEL_OWNER: this_process()}) is False


async def test_a_database_backup_whose_process_stopped_is_recorded_interrupted(plane, swarms):
    """A database backup runs through exec (no helper to sweep): its row is judged by the
    database lock it runs under. Held and beating: left running; free or stale: interrupted,
    with an audit row; a finished row is never touched."""
    store, now = plane.store, plane.clock.time()
    killed = store.start_backup("orders", "postgres", "k1", "cron", now - 30)
    stale = store.start_backup("users", "postgres", "k2", "cron", now - 30)
    live = store.start_backup("carts", "postgres", "k3", "cron", now - 30)
    done = store.start_backup("orders", "postgres", "k0", "cron", now - 90)
    store.finish_backup(done, "ok", now - 60, size=10)
    store.acquire_lock("db/carts", owner="u:a", what="backup", ttl=60.0, host="h")
    store.acquire_lock("db/users", owner="u:b", what="backup", ttl=60.0, host="h")
    store.db["locks"].update("db/users", {"heartbeat_at": now - 600})
    store.db["locks"].update("db/carts", {"heartbeat_at": now})

    await sweep_all(plane, ["local"])

    status = {row: store.backup(row)["status"] for row in (killed, stale, live, done)}
    assert status == {
        killed: BACKUP_INTERRUPTED,
        stale: BACKUP_INTERRUPTED,
        live: "running",
        done: "ok",
    }
    assert "stopped before it finished" in store.backup(killed)["error"]
    swept = [row["command"] for row in store.audit_log(limit=50) if row["result"] == "interrupted"]
    assert sorted(swept) == [f"sweep backup {killed} of orders", f"sweep backup {stale} of users"]
