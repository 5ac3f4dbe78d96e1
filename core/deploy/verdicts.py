"""Pure builders for what a rollout's end means: the failure title, the rollback target,
and what Swarm was seen running afterwards."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from core.errors import DeployError
from core.names import LABEL_RELEASE
from core.store import RELEASE_FAILED, Release
from core.swarm import comparable_image, running_tasks

KEEP_RELEASES = 10

VERDICT_WORDS = {
    "timeout": "did not become healthy in time",
    "unplaced": "could not be placed on any node",
    "node_lost": "stalled when a node went down",
    "paused": "stalled",
    "failed": "failed",
    "rolled_back": "failed",
    "unknown": "has an unknown outcome",
}


def failure_title(app: str, number: int, state: str, live: int | None) -> str:
    verdict = VERDICT_WORDS[state]
    if live is None:
        return f"deploy of {app} release {number} {verdict}; no earlier release to roll back to"
    return f"deploy of {app} release {number} {verdict} and was rolled back to release {live}"


def rollback_to(
    app: str, env: str, live: Release | None, number: int | None, releases: Iterable[Release]
) -> Release:
    """The release to go back to: ``number`` if given, else the newest good one before live.

    ``releases`` are the environment's recent ones, newest first (with ``number`` among them
    when it is given).
    """
    if number is not None:
        target = next((r for r in releases if r.number == number), None)
        if target is None or not target.spec:
            raise DeployError(f"{app} has no release {number} on {env}: see `releases {app}`")
        if target.status == RELEASE_FAILED:
            raise DeployError(f"release {number} of {app} failed its deploy; pick another")
        if live is not None and target.id == live.id:
            raise DeployError(f"release {number} is already live on {env}")
        return target
    for candidate in releases:
        if (
            candidate.status != RELEASE_FAILED
            and candidate.spec
            and (live is None or candidate.number < live.number)
        ):
            return candidate
    raise DeployError(f"{app} has no earlier good release on {env} to roll back to")


@dataclass(frozen=True)
class Seen:
    """What Swarm was just seen running for one service: its release label, how many of
    its desired tasks run that release's image."""

    release: int | None
    running: int
    desired: int

    def runs(self, number: int) -> bool:
        """Swarm runs release ``number``, every desired task of it."""
        return self.release == number and 0 < self.desired == self.running

    def count(self) -> str:
        return f"{self.running} of {self.desired} task{'s' if self.desired != 1 else ''} running"

    def words(self, service: str) -> str:
        if self.release is None:
            return f"{service} is not running (Swarm has no such service)"
        return f"{service} runs release {self.release}: {self.count()}"


def seen(
    service: dict[str, Any] | None, tasks: list[dict[str, Any]], images: dict[int, str]
) -> Seen:
    """``service`` and its ``tasks`` as read from Swarm; ``images``: release number → the
    image it runs (from the store), to count only the labelled release's tasks."""
    if service is None:
        return Seen(None, 0, 0)
    spec = service["Spec"]
    label = spec.get("Labels", {}).get(LABEL_RELEASE)
    number = int(label) if label and label.isdigit() else None
    desired = spec.get("Mode", {}).get("Replicated", {}).get("Replicas", 0)
    image = images.get(number) if number is not None else None
    running = [
        t
        for t in running_tasks(tasks)
        if image is not None
        and comparable_image(t["Spec"]["ContainerSpec"]["Image"]) == comparable_image(image)
    ]
    return Seen(number, len(running), desired)


def rollback_failed_title(app: str, number: int, state: str, live: int) -> str:
    return (
        f"deploy of {app} release {number} {VERDICT_WORDS[state]}, and the rollback to "
        f"release {live} failed too"
    )
