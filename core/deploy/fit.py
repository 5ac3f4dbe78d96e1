"""Where a service's tasks can go: Swarm's node list (``GET /nodes``) read against app.yml's
``placement``. Pure: the deploy reads the nodes once, and the image spread, the capacity
check (``max_per_node``) and the rollout order all follow from the same answer.

A node counts when Swarm reports it Ready and Active and every constraint holds for it
(Swarm's own rule: ``==`` needs the attribute to match, ``!=`` holds when it is absent).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from core.appspec import AppSpec
from core.errors import DeployError
from core.swarm.nodes import Where, down, eligible, hostname

START_FIRST, STOP_FIRST = "start-first", "stop-first"


def where(spec: AppSpec) -> Where:
    cap = spec.placement.max_per_node
    needed = -(-spec.replicas // cap) if cap else 1
    return Where(tuple(spec.placement.constraints), needed)


@dataclass(frozen=True)
class Fit:
    """The rollout order to use, and why it differs from app.yml's (``note``)."""

    order: str
    note: str | None = None


def fit(spec: AppSpec, nodes: Sequence[dict[str, Any]]) -> Fit:
    """Refuse a placement that cannot hold the replicas; with ``max_per_node`` and no spare
    room for a new task beside an old one, roll out stop-first (start-first would leave the
    new task with no node: "no suitable node")."""
    order, cap = spec.rollout.order, spec.placement.max_per_node
    if cap is None:
        return Fit(order)
    usable = eligible(nodes, spec.placement.constraints)
    room = cap * len(usable)
    if room < spec.replicas:
        missing = down(nodes)
        away = f"; down: {', '.join(missing)}" if missing else ""
        names = ", ".join(sorted(hostname(n) for n in usable)) or "none"
        raise DeployError(
            f"placement.max_per_node: {cap} task(s) on each of the {len(usable)} Ready node(s) "
            f"the placement allows ({names}{away}) hold {room}, fewer than replicas: "
            f"{spec.replicas}; lower replicas, raise placement.max_per_node, or add a node "
            "(or bring one back); nothing was changed"
        )
    if room == spec.replicas and order == START_FIRST:
        return Fit(
            STOP_FIRST,
            f"rolling out stop-first: placement.max_per_node {cap} on {len(usable)} node(s) "
            f"leaves no room to start a new task beside the {spec.replicas} running (set "
            "rollout.order: stop-first to say so, or add a node to keep start-first)",
        )
    return Fit(order)


def ordered(desired: dict[str, Any], order: str) -> dict[str, Any]:
    """``desired`` with its update and rollback run in ``order``."""
    return {
        **desired,
        "UpdateConfig": {**desired["UpdateConfig"], "Order": order},
        "RollbackConfig": {**desired["RollbackConfig"], "Order": order},
    }
