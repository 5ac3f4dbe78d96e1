"""Placement that fits the swarm's Ready nodes (core/deploy/fit.py): exact answers of the
pure builder, then deploys through the in-memory swarm whose scheduler honours
``max_per_node`` ("no suitable node" when no Ready node has room)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from cryptography.fernet import Fernet

from core.appspec import parse_app_config
from core.deploy import fit
from core.deploy.deploy import deploy
from core.deploy.resolve import resolve
from core.deploy.spec import service_spec
from core.errors import DeployError
from core.events import Progress
from core.plane import Plane
from core.secrets import Vault
from core.store import App, Store
from core.swarm import nodes, rollout
from core.swarm.servers import Servers
from core.swarm.testing import FakeSwarm
from core.swarm.testing.watch import fake_node
from tests.clock import SwarmSteps
from tests.fake_plane import drain, fast_swarm, outcome_of, running_images
from tests.fast_plane import register

THREE = """\
name: web
image: web:1
replicas: 3
placement: {spread: node.id, max_per_node: 1}
"""


def node(
    node_id: str, host: str, role: str = "worker", state: str = "ready", **labels: str
) -> dict[str, Any]:
    made = fake_node(node_id, host, role)
    made["Status"]["State"] = state
    made["Status"]["Addr"] = f"10.0.0.{node_id[-1]}"
    made["Spec"]["Labels"] = labels
    made["Description"]["Platform"] = {"OS": "linux", "Architecture": "x86_64"}
    return made


NODES = [
    node("n1", "eu-node1", "manager"),
    node("n2", "eu-node2", zone="eu"),
    node("n3", "eu-node3", state="down", zone="EU"),
]


def test_constraints_are_read_as_swarm_reads_them():
    manager, worker, gone = NODES
    assert nodes.allows(manager, ["node.role==manager"])
    assert not nodes.allows(worker, ["node.role == manager"])
    assert nodes.allows(worker, ["node.labels.zone==eu", "node.role!=manager"])
    assert nodes.allows(gone, ["node.labels.zone==eu"])  # values without case, as Swarm
    assert not nodes.allows(manager, ["node.labels.zone==eu"])  # absent: == fails
    assert nodes.allows(manager, ["node.labels.zone!=eu"])  # absent: != holds
    assert nodes.allows(worker, ["node.hostname==eu-node2", "node.platform.os==linux"])
    assert nodes.allows(worker, ["node.id!=n1", "node.platform.arch==x86_64"])
    assert nodes.eligible(NODES, []) == [manager, worker]
    assert nodes.eligible(NODES, ["node.role!=manager"]) == [worker]
    assert nodes.down(NODES) == ["eu-node3"]
    assert [nodes.address(n) for n in NODES] == ["10.0.0.1", "10.0.0.2", "10.0.0.3"]
    quirk = {**manager, "Status": {"State": "ready", "Addr": nodes.UNSPECIFIED}}
    quirk["ManagerStatus"] = {"Addr": "10.0.0.1:2377"}
    assert nodes.address(quirk) == "10.0.0.1"


def spec_of(text: str) -> Any:
    return parse_app_config(text).base


def test_max_per_node_with_no_spare_node_rolls_out_stop_first():
    ready = [*NODES[:2], node("n3", "eu-node3")]
    fitted = fit.fit(spec_of(THREE), ready)
    assert fitted.order == "stop-first"
    assert fitted.note == (
        "rolling out stop-first: placement.max_per_node 1 on 3 node(s) leaves no room to "
        "start a new task beside the 3 running (set rollout.order: stop-first to say so, or "
        "add a node to keep start-first)"
    )
    assert fit.fit(spec_of(THREE.replace("replicas: 3", "replicas: 2")), ready) == fit.Fit(
        "start-first"
    )
    assert fit.fit(spec_of("name: web\nimage: web:1\nreplicas: 9\n"), ready).note is None
    desired = fit.ordered(service_spec(spec_of(THREE), "production", 1, "x"), "stop-first")
    assert desired["UpdateConfig"]["Order"] == desired["RollbackConfig"]["Order"] == "stop-first"


def test_a_placement_that_cannot_hold_the_replicas_is_refused_naming_the_field():
    readme = THREE.replace("{spread", '{constraints: ["node.role!=manager"], spread')
    with pytest.raises(DeployError) as refused:
        fit.fit(spec_of(readme), NODES)
    assert str(refused.value) == (
        "placement.max_per_node: 1 task(s) on each of the 1 Ready node(s) the placement allows "
        "(eu-node2; down: eu-node3) hold 1, fewer than replicas: 3; lower replicas, raise "
        "placement.max_per_node, or add a node (or bring one back); nothing was changed"
    )


# deploys through the fake swarm
@pytest.fixture
def fake() -> FakeSwarm:
    swarm = fast_swarm()
    swarm.node_list = [node("n1", "eu-node1", "manager"), node("n2", "eu-node2")]
    swarm.node_list.append(node("n3", "eu-node3"))
    return swarm


@pytest.fixture
def plane(tmp_path: Path, fake: FakeSwarm):
    store = Store(tmp_path / "shipbot.db")
    folder = tmp_path / "web"
    folder.mkdir()
    (folder / "app.yml").write_text(THREE)
    register(store, App("web", "path", str(folder), None, "console:alice", time.time()))
    servers = Servers({"local": lambda: fake})
    yield Plane(store, Vault(Fernet.generate_key()), servers, tmp_path, clock=SwarmSteps(fake))
    store.close()


async def ship(plane: Plane, tag: str) -> list[Any]:
    return await drain(deploy(plane, await resolve(plane, "web", None, tag), user="u:1"))


async def test_three_replicas_on_three_nodes_deploy_twice_in_a_row(plane, fake):
    assert outcome_of(await ship(plane, "1")).ok
    second = await ship(plane, "2")
    said = [e.text for e in second if isinstance(e, Progress)]
    assert outcome_of(second).title == "web release 2 is live on production", outcome_of(second)
    assert fit.fit(spec_of(THREE), fake.node_list).note in said
    assert "updating (stop-first) service web-production" in said
    assert running_images(fake, "web-production") == ["shipbot/web:2"] * 3


async def test_a_node_down_leaves_no_room_and_nothing_changes(plane, fake):
    assert outcome_of(await ship(plane, "1")).ok
    fake.node_list[2]["Status"]["State"] = "down"
    version = fake.inspect_service("web-production")["Version"]["Index"]
    told = r"\(eu-node1, eu-node2; down: eu-node3\) hold 2, fewer than replicas: 3"
    with pytest.raises(DeployError, match=told):
        await ship(plane, "2")
    assert fake.inspect_service("web-production")["Version"]["Index"] == version
    assert [r.number for r in plane.store.releases("web", "production")] == [1]


async def test_a_task_no_node_can_take_is_told_as_such(fake):
    """Start-first with every node full: Swarm leaves the new task pending ("no suitable
    node"); the verdict says so rather than "did not become healthy in time"."""
    spec = service_spec(spec_of(THREE), "production", 1, "web:1")
    fake.create_service(spec)
    fake.settle()
    fake.tasks("web-production")
    before = rollout.update_started(fake.inspect_service("web-production"))
    fake.update_service(service_spec(spec_of(THREE), "production", 2, "web:2"))
    target = rollout.Target("web-production", "web:2", 3, 0, True, before)
    events = await drain(rollout.wait(fake, target, 30, SwarmSteps(fake)))
    verdict = events[-1]
    assert verdict.state == "unplaced"
    assert rollout.explain(fake, verdict.failed_task) == (
        "no suitable node (max replicas per node limit exceed)",
        [],
    )
    assert running_images(fake, "web-production") == ["web:1"] * 3
