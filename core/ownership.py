"""Which services on a swarm are this control plane's: two control planes (or two teams'
benchmark runs) may share one swarm, and neither lists, alerts on, drifts on, changes or
reports certificates of the other's.

Every service shipbot makes carries ``shipbot.plane``, the id its store was given when it
was made. A service without it was made before services carried one: it is ours when its
app is registered here, as it always was.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Mapping
from typing import TYPE_CHECKING, Any

from core.names import LABEL_APP, LABEL_PLANE

if TYPE_CHECKING:
    from core.plane import Plane


def labels_of(service: Mapping[str, Any]) -> Mapping[str, str]:
    return service.get("Spec", {}).get("Labels") or {}


def ours(service: Mapping[str, Any], plane_id: str | None, apps: Collection[str]) -> bool:
    """``service`` belongs to the control plane ``plane_id`` whose registered apps are
    ``apps`` (no id given: by its app alone)."""
    labels = labels_of(service)
    owner = labels.get(LABEL_PLANE)
    if owner is not None and plane_id is not None:
        return owner == plane_id
    return labels.get(LABEL_APP) in apps


def mine(
    services: Iterable[Mapping[str, Any]], plane_id: str | None, apps: Collection[str]
) -> list[Any]:
    return [s for s in services if ours(s, plane_id, apps)]


def stamped(spec: dict[str, Any], plane_id: str) -> dict[str, Any]:
    """``spec`` labelled as made by ``plane_id``."""
    return {**spec, "Labels": {**(spec.get("Labels") or {}), LABEL_PLANE: plane_id}}


def owner(plane: Plane) -> Callable[[Mapping[str, Any]], bool]:
    """A test of ``plane``'s ownership for the watchers (blocking: the registered apps are
    read at each call, so an app added while they run is theirs at once)."""

    def owns(service: Mapping[str, Any]) -> bool:
        return ours(service, plane.id, {a.name for a in plane.store.list_apps()})

    return owns
