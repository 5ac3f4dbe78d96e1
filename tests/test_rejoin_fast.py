"""Which images a node that comes back gets (core/servers/rejoin.py ``pick``): the images of
the services whose placement lets a task run there, once each, only for nodes that were not
Ready before and are now."""

from __future__ import annotations

from core.servers.rejoin import Carry, pick


def node(ident: str, host: str, role: str = "worker", state: str = "ready", avail: str = "active"):
    return {
        "ID": ident,
        "Description": {"Hostname": host},
        "Spec": {"Role": role, "Availability": avail},
        "Status": {"State": state},
    }


def service(image: str, constraints: list[str] | None = None):
    template = {"ContainerSpec": {"Image": image}}
    if constraints is not None:
        template["Placement"] = {"Constraints": constraints}
    return {"Spec": {"TaskTemplate": template}}


SERVICES = [
    service("shipbot/web:3"),
    service("shipbot/api:2", ["node.role==manager"]),
    service("shipbot/jobs:1", ["node.role!=manager"]),
    service("shipbot/web:3", ["node.hostname==n3"]),  # the same image twice: carried once
    service("shipbot/eu:1", ["node.labels.zone==eu"]),
]


def test_a_worker_back_gets_the_images_its_placement_allows():
    nodes = [node("m", "n1", "manager"), node("w2", "n2"), node("w3", "n3")]
    assert pick({"m", "w2"}, nodes, SERVICES) == [
        Carry("w3", "n3", "shipbot/jobs:1"),
        Carry("w3", "n3", "shipbot/web:3"),
    ]


def test_nodes_ready_before_or_still_down_get_nothing():
    nodes = [node("m", "n1", "manager"), node("w2", "n2"), node("w3", "n3", state="down")]
    assert pick({"m", "w2"}, nodes, SERVICES) == []


def test_a_drained_node_that_is_up_gets_nothing_until_it_is_active():
    nodes = [node("w3", "n3", avail="drain")]
    assert pick(set(), nodes, SERVICES) == []
    assert pick(set(), [node("w3", "n3")], SERVICES) == [
        Carry("w3", "n3", "shipbot/jobs:1"),
        Carry("w3", "n3", "shipbot/web:3"),
    ]


def test_two_nodes_back_at_once_each_get_theirs_in_hostname_order():
    nodes = [node("m", "n1", "manager", state="ready"), node("w2", "n2")]
    assert pick(set(), nodes, SERVICES[:3]) == [
        Carry("m", "n1", "shipbot/api:2"),
        Carry("m", "n1", "shipbot/web:3"),
        Carry("w2", "n2", "shipbot/jobs:1"),
        Carry("w2", "n2", "shipbot/web:3"),
    ]
