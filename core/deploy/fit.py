"""Where a service's tasks can go: Swarm's node list (``GET /nodes``) read against app.yml's
``placement``. Pure: the deploy reads the nodes once, and the image spread, the capacity
check (``max_per_node``) and the rollout order all follow from the same answer.

A node counts when Swarm reports it Ready and Active and every constraint holds for it
(Swarm's own rule: ``==`` needs the attribute to match, ``!=`` holds when it is absent).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from core.appspec import AppSpec
from core.errors import DeployError

START_FIRST, STOP_FIRST = "start-first", "stop-first"
UNSPECIFIED = "0.0.0.0"  # noqa: S104 (an address read from Swarm, nothing binds to it)


def hostname(node: dict[str, Any]) -> str:
    return (node.get("Description") or {}).get("Hostname") or node["ID"][:12]


def ready(node: dict[str, Any]) -> bool:
    """Swarm can place tasks there now: Ready, and not drained or paused."""
    state = (node.get("Status") or {}).get("State")
    return state == "ready" and (node.get("Spec") or {}).get("Availability") == "active"


def address(node: dict[str, Any]) -> str:
    """The address the node advertises (a manager may show 0.0.0.0 there: its manager
    address then)."""
    addr = (node.get("Status") or {}).get("Addr") or ""
    if addr in ("", UNSPECIFIED):
        addr = ((node.get("ManagerStatus") or {}).get("Addr") or "").rsplit(":", 1)[0]
    return addr


def down(nodes: Iterable[dict[str, Any]]) -> list[str]:
    """The hostnames of nodes Swarm does not report Ready (down, unknown, disconnected)."""
    return sorted(hostname(n) for n in nodes if (n.get("Status") or {}).get("State") != "ready")


def _attribute(node: dict[str, Any], key: str) -> str | None:
    description = node.get("Description") or {}
    spec = node.get("Spec") or {}
    platform = description.get("Platform") or {}
    if key.startswith("node.labels."):
        return (spec.get("Labels") or {}).get(key.removeprefix("node.labels."))
    if key.startswith("engine.labels."):
        engine = (description.get("Engine") or {}).get("Labels") or {}
        return engine.get(key.removeprefix("engine.labels."))
    return {
        "node.id": node.get("ID"),
        "node.hostname": description.get("Hostname"),
        "node.role": spec.get("Role"),
        "node.platform.os": platform.get("OS"),
        "node.platform.arch": platform.get("Architecture"),
    }.get(key)


def allows(node: dict[str, Any], constraints: Sequence[str]) -> bool:
    """Every constraint holds for ``node`` (values compared without case, as Swarm does)."""
    for constraint in constraints:
        text = constraint.replace(" ", "")
        equal = "==" in text
        key, _, wanted = text.partition("==" if equal else "!=")
        value = _attribute(node, key)
        same = value is not None and value.casefold() == wanted.casefold()
        if same != equal:
            return False
    return True


def eligible(nodes: Iterable[dict[str, Any]], constraints: Sequence[str]) -> list[dict[str, Any]]:
    """The nodes Swarm may put this service's tasks on now."""
    return [n for n in nodes if ready(n) and allows(n, constraints)]


@dataclass(frozen=True)
class Where:
    """Where an environment's tasks may run, for the image spread: the constraints, and how
    many nodes must hold the image for Swarm to place every replica."""

    constraints: tuple[str, ...] = ()
    nodes_needed: int = 1


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
