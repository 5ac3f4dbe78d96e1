"""Helpers and jobs a crash left behind, swept on in-memory swarms: only this control
plane's, only those older than the bound, on every server that answers."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from core.data.db_spec import LABEL_DB
from core.data.volumes import LABEL_HELPER
from core.names import LABEL_APP, LABEL_ENV, LABEL_PLANE
from core.plane import Plane
from core.secrets import Vault
from core.store import Store
from core.swarm.jobs import LABEL_JOB_APP, LABEL_JOB_KIND, job_labels, job_name, job_spec
from core.swarm.servers import Servers
from core.swarm.testing import STUCK, FakeSwarm
from core.swarm.testing.orchestrator import stamp
from core.watch.sweep import AFTER_SECONDS, leftovers, sweep_all
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
