"""One server's facts as the failure watcher reads them in one pass: its services (this
control plane's apps, databases and proxy) with their recent failures, OOM kills and log
tails, and its nodes (core/watch/alerts.py checks them; core/watch/alert_rules.py decides).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from core.config import AlertsConfig
from core.data.db_spec import LABEL_DB
from core.edge.proxy import LABEL_EDGE
from core.errors import CoreError
from core.swarm import SwarmClient, running_tasks
from core.watch.alert_rules import OOM, Facts, NodeFacts, ServiceFacts, TaskFailure, alert_key
from core.watch.subjects import subject_of

FAILED_STATES = ("failed", "rejected")


def engine_time(stamp: str) -> float:
    """The engine's RFC 3339 time with nanoseconds (``…T19:51:34.123456789Z``) in seconds."""
    head, _, frac = stamp.rstrip("Z").partition(".")
    base = dt.datetime.strptime(head, "%Y-%m-%dT%H:%M:%S").replace(tzinfo=dt.UTC)
    return base.timestamp() + (float(f"0.{frac}") if frac.isdigit() else 0.0)


def _image(spec: dict[str, Any]) -> str:
    return spec["ContainerSpec"]["Image"].split("@", 1)[0]


def service_facts(
    swarm: SwarmClient, service: dict[str, Any], now: float, config: AlertsConfig
) -> tuple[ServiceFacts, list[dict[str, Any]]]:
    """One service (an app's, a database's, the proxy) as the engine shows it now, and its
    tasks."""
    spec = service["Spec"]
    name, labels = spec["Name"], spec.get("Labels") or {}
    tasks = swarm.tasks(name)
    mode = spec.get("Mode") or {}
    if "Replicated" in mode:
        desired = int(mode["Replicated"].get("Replicas") or 0)
    else:  # global: one per node Swarm wants it on
        desired = len([t for t in tasks if t["DesiredState"] == "running"])
    if LABEL_DB in labels or LABEL_EDGE in labels:
        # what shipbot runs for its apps serves nothing scaled to none: it wants its one
        desired = max(desired, 1)
    image = _image(spec["TaskTemplate"])
    failures = sorted(
        (
            TaskFailure(
                t["ID"],
                engine_time(t["Status"]["Timestamp"]),
                (t["Status"].get("ContainerStatus") or {}).get("ExitCode"),
                t["Status"].get("Err") or t["Status"].get("Message") or "failed",
            )
            for t in tasks
            if t["Status"]["State"] in FAILED_STATES and _image(t["Spec"]) == image
        ),
        key=lambda f: f.at,
    )
    recent = tuple(f for f in failures if f.at >= now - config.crash_window_seconds)
    state = (service.get("UpdateStatus") or {}).get("State")
    what, detail = subject_of(labels)
    facts = ServiceFacts(
        name,
        what,
        detail,
        desired,
        len(running_tasks(tasks)),
        updating=state in ("updating", "rollback_started"),
        failures=recent,
    )
    return facts, tasks


def log_tail(swarm: SwarmClient, service: str, task: str, lines: int) -> tuple[str, ...]:
    """The last ``lines`` lines the task printed (from the service's logs: any node)."""
    try:
        entries = swarm.service_logs(service, lines * 4)
    except CoreError as exc:
        return (f"(its log could not be read: {exc})",)
    own = sorted((stamp, line) for stamp, task_id, line in entries if task_id == task)
    return tuple(line for _, line in own[-lines:])


def oom_killed_at(
    swarm: SwarmClient, facts: ServiceFacts, tasks: list[dict[str, Any]]
) -> float | None:
    """When the newest failed task killed with 137 was an OOM kill, by its container's
    state (containers on other nodes are not found: their events tell)."""
    containers = {
        t["ID"]: (t["Status"].get("ContainerStatus") or {}).get("ContainerID") for t in tasks
    }
    for failure in reversed(facts.failures):
        if failure.exit_code != 137 or not containers.get(failure.task):
            continue
        try:
            found = swarm.inspect_container(containers[failure.task]) or {}
        except CoreError:
            return None
        if (found.get("State") or {}).get("OOMKilled"):
            return failure.at
        return None  # the newest 137 was a stop or a failed health check, not memory
    return None


def node_facts(
    node: dict[str, Any], apps: dict[str, set[str]], usage: dict[str, dict[str, float]] | None
) -> NodeFacts:
    found = (usage or {}).get(node["ID"], {})
    return NodeFacts(
        node["ID"],
        (node.get("Description") or {}).get("Hostname", node["ID"][:12]),
        (node.get("Status") or {}).get("State", "unknown"),
        (node.get("Spec") or {}).get("Availability", "active"),
        tuple(sorted(apps.get(node["ID"], ()))),
        found.get("disk_percent"),
        found.get("memory_percent"),
    )


def read_facts(
    swarm: SwarmClient,
    server: str,
    now: float,
    config: AlertsConfig,
    guarded: frozenset[str],
    open_keys: set[str],
    usage: dict[str, dict[str, float]] | None,
    owns: Callable[[Mapping[str, Any]], bool] = lambda service: True,
    extra: Sequence[str] = (),
) -> Facts:
    """Everything ``step`` needs from one server, read in one pass (of the services
    ``owns`` says are this control plane's: its apps', and those named in ``extra``, its
    databases and its proxy, where they run here)."""
    services: list[ServiceFacts] = []
    apps_on: dict[str, set[str]] = {}
    found = swarm.services()
    listed = {s["Spec"]["Name"] for s in found}
    found += [s for s in map(swarm.inspect_service, set(extra) - listed) if s is not None]
    for service in filter(owns, found):
        facts, tasks = service_facts(swarm, service, now, config)
        for task in running_tasks(tasks):
            if task.get("NodeID"):
                apps_on.setdefault(task["NodeID"], set()).add(f"{facts.app} ({facts.env})")
        facts = dataclasses.replace(facts, oom_at=oom_killed_at(swarm, facts, tasks))
        wants_tail = len(facts.failures) >= config.crash_restarts and not facts.updating
        if alert_key(server, OOM, facts.service) in open_keys or wants_tail:
            newest = facts.failures[-1].task if facts.failures else None
            if newest:
                tail = log_tail(swarm, facts.service, newest, config.log_lines)
                facts = dataclasses.replace(facts, log_tail=tail)
        services.append(facts)
    nodes = tuple(node_facts(n, apps_on, usage) for n in swarm.nodes())
    return Facts(server, tuple(services), nodes, guarded)
