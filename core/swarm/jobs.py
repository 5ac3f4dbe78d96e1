"""One-off Swarm jobs: a service in ``replicated-job`` mode that runs one task once.

``job_spec`` is a pure builder: it turns an app's ServiceSpec (image, env, secrets, mounts,
network, limits, placement) into the spec of a job running ``argv`` on that image with
no health check and no restart (one attempt). ``run_job`` is its executor: it creates the
job, streams its log lines as they come, waits for its task to end or for the deadline,
and removes the job either way.

Job services carry ``shipbot.job.*`` labels, never the app label, so status, drift and
the live-task views never count a job as a task of the app.
"""

from __future__ import annotations

import asyncio
import copy
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from core.clock import SYSTEM, Clock
from core.errors import DeployError
from core.events import LogLine
from core.names import LABEL_PLANE
from core.process import LABEL_OWNER, owner_labels
from core.swarm import SwarmClient

LABEL_JOB_APP = "shipbot.job.app"
LABEL_JOB_ENV = "shipbot.job.env"
LABEL_JOB_KIND = "shipbot.job.kind"
ENDED = {"complete", "failed", "rejected", "shutdown", "orphaned", "remove"}
MAX_LINES = 2000  # read per poll: more printed within one poll than this is not shown
QUOTED = 200  # the last lines kept for the verdict
POLL_SECONDS = 0.5
NAME_ROOM = 40  # Swarm service names stop at 63 characters


@dataclass(frozen=True)
class JobResult:
    name: str
    state: str  # the task's last state, or "timeout"
    exit_code: int | None
    error: str  # the task's error as Swarm says it ("" when none)
    lines: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return self.state == "complete" and self.exit_code == 0

    def summary(self) -> str:
        if self.state == "timeout":
            return f"it did not finish within {self.seconds:.0f}s and was stopped"
        if self.exit_code is not None:
            return f"it exited with {self.exit_code}"
        return f"its task ended {self.state}" + (f": {self.error}" if self.error else "")


def job_name(service: str, kind: str, number: int) -> str:
    """``api-production_release-4``: '_' is in no app or environment name, so a job's
    name can never be another app's service (Swarm allows it, DNS labels too)."""
    return f"{service[:NAME_ROOM]}_{kind}-{number}"


def job_labels(app: str, env: str, kind: str) -> dict[str, str]:
    return {LABEL_JOB_APP: app, LABEL_JOB_ENV: env, LABEL_JOB_KIND: kind}


def job_spec(
    service: dict[str, Any], name: str, argv: Sequence[str], labels: dict[str, str]
) -> dict[str, Any]:
    """The job that runs ``argv`` as ``service``'s tasks would run, once; it carries the
    service's control plane id and this process's, so a job a crash left behind is swept
    (core/watch/sweep.py)."""
    plane = (service.get("Labels") or {}).get(LABEL_PLANE)
    labels = {**labels, LABEL_PLANE: plane} if plane else dict(labels)
    labels |= owner_labels()
    template = copy.deepcopy(service["TaskTemplate"])
    container = template["ContainerSpec"]
    container.pop("Healthcheck", None)  # a job's task is done when argv is, not healthy
    container["Args"] = list(argv)
    container["Labels"] = dict(labels)
    template["RestartPolicy"] = {"Condition": "none", "MaxAttempts": 1}
    template.pop("ForceUpdate", None)
    return {
        "Name": name,
        "Labels": dict(labels),
        "TaskTemplate": template,
        "Mode": {"ReplicatedJob": {"MaxConcurrent": 1, "TotalCompletions": 1}},
        "UpdateConfig": None,
        "RollbackConfig": None,
        "EndpointSpec": {"Mode": "dnsrr"},
    }


def _clear_leftover(swarm: SwarmClient, name: str, labels: dict[str, str]) -> None:
    """A job of the same name left by a stopped shipbot is removed; anything else there is
    not ours to touch."""
    found = swarm.inspect_service(name)
    if found is None:
        return
    theirs = found.get("Spec", {}).get("Labels") or {}
    mine = {k: v for k, v in labels.items() if k not in (LABEL_JOB_KIND, LABEL_OWNER)}
    if LABEL_PLANE not in theirs:  # left from before jobs carried the plane's id: this app's
        mine.pop(LABEL_PLANE, None)
    if any(theirs.get(key) != value for key, value in mine.items()):
        raise DeployError(f"service {name} exists and is not this app's job; nothing was run")
    swarm.remove_service(name)


def _stamp(text: str) -> tuple[str, int]:
    """An engine log timestamp (RFC 3339, UTC, up to nanoseconds) as a sortable key."""
    seconds, _, fraction = text.removesuffix("Z").partition(".")
    return seconds, int(fraction.ljust(9, "0")[:9] or 0)


class LogCursor:
    """What of a job's log was shown: each poll reads the last lines again (the engine
    has no cursor), and only those after the last shown timestamp are new."""

    def __init__(self) -> None:
        self.last: tuple[str, int] = ("", -1)
        self.seen_at_last = 0  # lines already shown that carry exactly ``last``

    def fresh(self, logged: list[tuple[str, str, str]]) -> list[str]:
        out, skip = [], self.seen_at_last
        for stamp, _, line in logged:
            key = _stamp(stamp)
            if key < self.last:
                continue
            if key == self.last:
                if skip:
                    skip -= 1
                    continue
                self.seen_at_last += 1
            else:
                self.last, self.seen_at_last, skip = key, 1, 0
            out.append(line)
        return out


def _verdict(tasks: list[dict[str, Any]]) -> dict[str, Any] | None:
    ended = [t for t in tasks if t["Status"]["State"] in ENDED]
    return max(ended, key=lambda t: t["Status"].get("Timestamp", "")) if ended else None


async def run_job(
    swarm: SwarmClient,
    spec: dict[str, Any],
    *,
    timeout: float,
    mask: Callable[[str], str],
    source: str,
    registry_auth: dict[str, str] | None = None,
    clock: Clock = SYSTEM,
) -> AsyncIterator[LogLine | JobResult]:
    """Run the job; yield its (masked) log lines as they come, then one ``JobResult``;
    its timeout and pauses are on ``clock``'s time."""
    name = spec["Name"]
    await asyncio.to_thread(_clear_leftover, swarm, name, spec["Labels"])
    started = clock.monotonic()
    shown: list[str] = []
    containers: set[str] = set()
    cursor = LogCursor()
    try:
        await asyncio.to_thread(swarm.create_service, spec, registry_auth)
        while True:
            tasks = await asyncio.to_thread(swarm.tasks, name)
            containers.update(filter(None, (_container_of(t) for t in tasks)))
            ended = _verdict(tasks)
            logged = await asyncio.to_thread(swarm.service_logs, name, MAX_LINES)
            for line in cursor.fresh(logged):
                shown.append(mask(line))
                yield LogLine(shown[-1], source=source)
            seconds = clock.monotonic() - started
            if ended is not None:
                status = ended["Status"]
                code = status.get("ContainerStatus", {}).get("ExitCode")
                state = status["State"]
                error = mask(status.get("Err", ""))
                yield JobResult(name, state, code, error, shown[-QUOTED:], seconds)
                return
            if seconds > timeout:
                yield JobResult(name, "timeout", None, "", shown[-QUOTED:], timeout)
                return
            await clock.sleep(POLL_SECONDS)
    finally:
        await asyncio.shield(asyncio.to_thread(_remove, swarm, name, containers))


def _container_of(task: dict[str, Any]) -> str | None:
    return task["Status"].get("ContainerStatus", {}).get("ContainerID")


def _remove(swarm: SwarmClient, name: str, containers: set[str]) -> None:
    """The job service, then its containers: Swarm leaves a removed job's stopped
    containers behind (moby/moby#42789), holding the app's volumes."""
    swarm.remove_service(name)
    for container in sorted(containers):
        swarm.remove_container(container)
