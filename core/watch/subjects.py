"""What the failure watcher watches on a server: this control plane's apps, and what it runs
for them itself: its managed databases and its proxy. A crash loop, an OOM kill or missing
replicas of ``db-orders`` or of the edge alerts like an app's, named for what it is.

A database's service carries ``shipbot.db`` (and ``shipbot.plane``); the proxy carries
``shipbot.edge`` under the name shipbot.yml gives it. Neither has an app label, so the
engine does not list them with the apps: the watcher reads them by name. Helpers and
scratch databases (a backup's verify copy) are short-lived and are not watched: only
registered databases are.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from typing import TYPE_CHECKING, Any

from core.data import db_spec, homes
from core.data.db_spec import LABEL_DB, LABEL_DB_KIND
from core.edge.proxy import LABEL_EDGE
from core.names import LABEL_APP, LABEL_ENV, LABEL_PLANE
from core.ownership import labels_of, ours

if TYPE_CHECKING:
    from core.plane import Plane

PROXY = "the proxy"  # the subject's name in alerts (no app can be named so: names have no space)


def subject_of(labels: Mapping[str, str]) -> tuple[str, str]:
    """(what, detail) an alert names a service by: an app and its environment, a database
    and its kind, or the proxy."""
    if LABEL_APP in labels:
        return labels[LABEL_APP], labels.get(LABEL_ENV, "")
    if LABEL_DB in labels:
        return f"database {labels[LABEL_DB]}", labels.get(LABEL_DB_KIND, "database")
    if LABEL_EDGE in labels:
        return PROXY, "edge"
    return "", ""


def watched(
    service: Mapping[str, Any],
    plane_id: str,
    apps: Collection[str],
    databases: Collection[str],
    proxy: str,
) -> bool:
    """``service`` is an app, a registered database or the proxy of control plane
    ``plane_id`` (one made before services carried the id is ours by its name)."""
    if ours(service, plane_id, apps):
        return True
    labels = labels_of(service)
    if labels.get(LABEL_PLANE, plane_id) != plane_id:
        return False
    if LABEL_DB in labels:
        return labels[LABEL_DB] in databases
    name = (service.get("Spec") or {}).get("Name")
    return LABEL_EDGE in labels and name == proxy


def watcher_owns(plane: Plane) -> Callable[[Mapping[str, Any]], bool]:
    """``watched`` for the watchers (blocking: apps and databases are read at each call, so
    one added while they run is watched at once)."""

    def owns(service: Mapping[str, Any]) -> bool:
        apps = {a.name for a in plane.store.list_apps()}
        databases = {row["name"] for row in plane.store.databases()}
        return watched(service, plane.id, apps, databases, plane.edge.service)

    return owns


def watched_services(plane: Plane, server: str) -> list[str]:
    """The services besides apps' that ``server``'s watcher looks for by name (the engine
    lists services by their app label): the registered databases that run there, and the
    proxy (read where it runs; where there is none, nothing is read)."""
    names = [
        db_spec.service_name(row["name"])
        for row in plane.store.databases()
        if homes.row_server(plane, row) == server
    ]
    return [*names, plane.edge.service]
