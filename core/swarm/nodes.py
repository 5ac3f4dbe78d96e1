"""Swarm's nodes as facts (``GET /nodes``): their names, addresses, readiness, and whether a
placement constraint holds for each (Swarm's own rule: ``==`` needs the attribute to match,
``!=`` holds when it is absent). Pure; the image spread, ``status`` and the placement fit
(core/deploy/fit.py) read nodes through it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

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
