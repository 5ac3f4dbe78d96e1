"""Helper and job services a crash left behind, removed: release and ``run`` jobs
(``shipbot.job.kind``), volume-backup helpers (``shipbot.volume.helper``) and the scratch
databases a backup's verify made (``shipbot.db`` = ``verify-…``). Each is made, waited on
and removed by one operation; one still there long after it was made outlived the process
that made it.

Only services carrying this control plane's id (``shipbot.plane``) are touched, and only
those older than ``after`` seconds (a bound well past the longest job or helper), so a job
another shipbot process runs now is never cut short. ``leftovers`` is pure; ``sweep`` lists
and removes on one server; ``sweep_all`` does every server, each on its own (one away is
logged and skipped).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable, Mapping
from typing import Any

from core.data.db_spec import LABEL_DB
from core.errors import CoreError
from core.names import LABEL_HELPER, LABEL_PLANE
from core.plane import Plane
from core.swarm import SwarmClient
from core.swarm.jobs import LABEL_JOB_KIND
from core.watch.facts import engine_time

log = logging.getLogger("shipbot.sweep")
AFTER_SECONDS = 6 * 3600.0  # past any job's or helper's own time-out
LABELS = (LABEL_JOB_KIND, LABEL_HELPER, LABEL_DB)  # what marks a helper or a job
SCRATCH = "verify-"  # the name a verify's scratch database starts with (core/data/verify.py)


def is_helper(labels: Mapping[str, str]) -> bool:
    if LABEL_JOB_KIND in labels or LABEL_HELPER in labels:
        return True
    return labels.get(LABEL_DB, "").startswith(SCRATCH)


def leftovers(
    services: Iterable[Mapping[str, Any]], plane_id: str, now: float, after: float
) -> list[str]:
    """The names of this plane's helpers and jobs made more than ``after`` seconds ago."""
    out = set()
    for service in services:
        spec = service.get("Spec") or {}
        labels = spec.get("Labels") or {}
        if labels.get(LABEL_PLANE) != plane_id or not is_helper(labels):
            continue
        created = service.get("CreatedAt")
        if created and now - engine_time(created) > after:
            out.add(spec["Name"])
    return sorted(out)


def _sweep(swarm: SwarmClient, plane_id: str, now: float, after: float) -> list[str]:
    found = [s for label in LABELS for s in swarm.services_labelled(label)]
    gone = leftovers(found, plane_id, now, after)
    for name in gone:
        swarm.remove_service(name)
    return gone


async def sweep(plane: Plane, server: str, after: float = AFTER_SECONDS) -> list[str]:
    """Remove ``server``'s leftovers; returns their names."""
    swarm = await plane.servers.client(server)
    return await asyncio.to_thread(_sweep, swarm, plane.id, plane.clock.time(), after)


async def sweep_all(
    plane: Plane, servers: Iterable[str], after: float = AFTER_SECONDS
) -> dict[str, list[str]]:
    """Every server's leftovers removed, each server on its own: server → names removed
    (a server that did not answer is logged and left for the next round)."""
    out: dict[str, list[str]] = {}
    for server in servers:
        try:
            gone = await sweep(plane, server, after)
        except CoreError as exc:
            log.warning("%s: leftovers not swept: %s", server, exc)
            continue
        for name in gone:
            log.info("%s: removed %s, left behind by a shipbot that stopped", server, name)
        out[server] = gone
    return out
