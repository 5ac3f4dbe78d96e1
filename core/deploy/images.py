"""Release images kept on the engine: the last ``KEEP_RELEASES`` of each app, for rollback."""

from __future__ import annotations

from core.deploy.spec import image_ref
from core.deploy.verdicts import KEEP_RELEASES
from core.store import Store
from core.swarm import SwarmClient


def to_prune(numbers: list[int], keep: int = KEEP_RELEASES) -> list[int]:
    """Release numbers whose images go: all but the newest ``keep``."""
    return sorted(set(numbers))[:-keep] if keep else sorted(set(numbers))


def prune(swarm: SwarmClient, store: Store, app: str) -> None:
    for number in to_prune(store.release_numbers(app)):
        swarm.remove_image(image_ref(app, number))
