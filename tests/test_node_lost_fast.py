"""A node lost during a rollout (core/swarm/rollout.py): the tasks Swarm still lists as
running there are not counted up, the stalled update names the node, and the verdict
says so instead of "no task of the new release became healthy in time"."""

from __future__ import annotations

from core.deploy.verdicts import failure_title
from core.swarm.rollout import Target, explain, lost_nodes, observe

IMAGE = "shipbot/web:2"


def task(ident: str, node: str, image: str = IMAGE, state: str = "running"):
    return {
        "ID": ident,
        "NodeID": node,
        "DesiredState": "running",
        "CreatedAt": "2026-12-07T18:00:00Z",
        "Status": {"State": state},
        "Spec": {"ContainerSpec": {"Image": image}},
    }


def node(ident: str, host: str, state: str = "ready"):
    return {
        "ID": ident,
        "Description": {"Hostname": host},
        "Spec": {"Availability": "active"},
        "Status": {"State": state},
    }


class Swarm:
    """What a manager said right after fbg-node3 went down mid-rollout: four tasks of
    release 2 "running", one of them on the lost node."""

    def __init__(self, third: str = "down") -> None:
        self._nodes = [
            node("n1", "fbg-node1"),
            node("n2", "fbg-node2"),
            node("n3", "fbg-node3", third),
        ]
        self._tasks = [task("a", "n1"), task("b", "n2"), task("c", "n3"), task("d", "n1")]

    def tasks(self, service: str):
        return self._tasks

    def nodes(self):
        return self._nodes

    def inspect_service(self, name: str):
        return {"UpdatedAt": "2026-12-07T18:00:00Z", "UpdateStatus": {}}


TARGET = Target("web-production", IMAGE, 3, 0, True, None)


def test_tasks_on_a_down_node_are_not_counted_up():
    seen = observe(Swarm(), TARGET)
    assert seen.good == 3  # not 4/3


def test_the_lost_node_is_named():
    assert lost_nodes(Swarm(), TARGET) == ("fbg-node3",)
    assert lost_nodes(Swarm(third="ready"), TARGET) == ()
    old = Swarm()  # Swarm gave the new release's task up: the old release's is still there
    old._tasks = [task("a", "n1"), task("c", "n3", image="shipbot/web:1")]
    old._tasks[1]["DesiredState"] = "shutdown"
    assert lost_nodes(old, TARGET) == ("fbg-node3",)


def test_the_verdict_names_the_node():
    reason, tail = explain(Swarm(), None, lost=("fbg-node3",))
    assert reason == (
        "node fbg-node3 went down during the rollout, with tasks of this service on it: "
        "Swarm's update waited for them and cannot see them until the node is back "
        "(`status` names down nodes)"
    )
    assert tail == []
    assert failure_title("web", 2, "node_lost", 1) == (
        "deploy of web release 2 stalled when a node went down and was rolled back to release 1"
    )
