"""Pure builders for what a rollout's end means: the failure title and the rollback target."""

from __future__ import annotations

from collections.abc import Iterable

from core.errors import DeployError
from core.store import RELEASE_FAILED, Release

KEEP_RELEASES = 10

VERDICT_WORDS = {
    "timeout": "did not become healthy in time",
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
