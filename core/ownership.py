"""Which services on a swarm are this control plane's: two control planes (or two teams'
benchmark runs) may share one swarm, and neither lists, alerts on, drifts on, changes or
reports certificates of the other's.

Every service shipbot makes carries ``shipbot.plane``, the id its store was given when it
was made, and so do the networks and the named volumes (an app's, a database's) it makes.
A service without it was made before services carried one: it is ours when its app (or its
database) is registered here, as it always was.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Mapping
from typing import Any, Protocol

from core.names import LABEL_APP, LABEL_PLANE


class Owning(Protocol):
    """What ``owner`` reads of a control plane: its id, and its store's registered apps."""

    @property
    def id(self) -> str: ...

    @property
    def store(self) -> Any: ...


def labels_of(found: Mapping[str, Any]) -> Mapping[str, str]:
    """The labels of a service (under ``Spec``), or of a volume or network (at the top)."""
    return (found.get("Spec") or {}).get("Labels") or found.get("Labels") or {}


def ours(service: Mapping[str, Any], plane_id: str | None, apps: Collection[str]) -> bool:
    """``service`` is an app's service of the control plane ``plane_id`` whose registered
    apps are ``apps`` (no id given: by its app alone). A database's service is none."""
    labels = labels_of(service)
    if LABEL_APP not in labels:
        return False
    owner = labels.get(LABEL_PLANE)
    if owner is not None and plane_id is not None:
        return owner == plane_id
    return labels[LABEL_APP] in apps


def foreign(found: Mapping[str, Any] | None, plane_id: str) -> str | None:
    """The id of the other control plane that made ``found`` (a service, volume or network
    as the engine shows it); None when it is ours, made before the label, or not there."""
    owner = labels_of(found or {}).get(LABEL_PLANE)
    return owner if owner is not None and owner != plane_id else None


def mine(
    services: Iterable[Mapping[str, Any]], plane_id: str | None, apps: Collection[str]
) -> list[Any]:
    return [s for s in services if ours(s, plane_id, apps)]


def stamped(spec: dict[str, Any], plane_id: str) -> dict[str, Any]:
    """The service ``spec`` labelled as made by ``plane_id``, and so are the named volumes
    its tasks mount (labels reach a volume when the engine makes it for the first task)."""
    out = {**spec, "Labels": {**(spec.get("Labels") or {}), LABEL_PLANE: plane_id}}
    template = spec.get("TaskTemplate") or {}
    container = template.get("ContainerSpec") or {}
    if container.get("Mounts"):
        mounts = [_stamped_mount(m, plane_id) for m in container["Mounts"]]
        out["TaskTemplate"] = {**template, "ContainerSpec": {**container, "Mounts": mounts}}
    return out


def _stamped_mount(mount: dict[str, Any], plane_id: str) -> dict[str, Any]:
    if mount.get("Type") != "volume":
        return mount
    options = mount.get("VolumeOptions") or {}
    labels = {**(options.get("Labels") or {}), LABEL_PLANE: plane_id}
    return {**mount, "VolumeOptions": {**options, "Labels": labels}}


def owner(plane: Owning) -> Callable[[Mapping[str, Any]], bool]:
    """A test of ``plane``'s ownership for the watchers (blocking: the registered apps are
    read at each call, so an app added while they run is theirs at once)."""

    def owns(service: Mapping[str, Any]) -> bool:
        return ours(service, plane.id, {a.name for a in plane.store.list_apps()})

    return owns
