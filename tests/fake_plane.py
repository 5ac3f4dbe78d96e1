"""The fast tier's swarm: a ``FakeSwarm`` whose steps are the rollout deadline's clock
(``tests.clock.SwarmSteps``), and the apps the fake-swarm tests deploy."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from core.events import Event, Outcome
from core.swarm.testing import FakeSwarm

CHECK = "wget -qO- http://127.0.0.1:8080/"
WEB = """\
name: web
image: web:1
replicas: 2
healthcheck: {cmd: ["wget", "-qO-", "http://127.0.0.1:8080/"], interval: 1s, timeout: 1s,
  retries: 2}
"""
PLAIN = "name: plain\nimage: web:1\nreplicas: 2\n"  # no health check: the base deadline only
PROBE_FAILED = (
    f"health check `{CHECK}` failed (exit 1): "
    "wget: can't connect to remote host (127.0.0.1): Connection refused"
)


def fast_swarm() -> FakeSwarm:
    """A fake swarm holding web:1 and web:2 (pulled from its registry); rollouts on it wait
    on ``SwarmSteps(swarm)``, never in real time."""
    swarm = FakeSwarm()
    for ref in ("web:1", "web:2"):
        swarm.publish(ref)
    return swarm


async def drain(events: AsyncIterator[Any]) -> list[Any]:
    return [event async for event in events]


def outcome_of(events: list[Event]) -> Outcome:
    assert isinstance(events[-1], Outcome), events
    return events[-1]


def running_images(fake: FakeSwarm, service: str) -> list[str]:
    return sorted(
        t["Spec"]["ContainerSpec"]["Image"]
        for t in fake.tasks(service)
        if t["DesiredState"] == "running" and t["Status"]["State"] == "running"
    )
