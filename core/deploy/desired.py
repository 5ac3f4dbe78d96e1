"""The service a release asks Swarm for, shared by ``plan`` (what would change) and
``deploy`` (what is applied), so the two never build it apart: app.yml's spec routed around
other apps' granted names, stamped as this control plane's, in the order the nodes allow."""

from __future__ import annotations

import asyncio
from typing import Any

from core.appspec import AppSpec
from core.deploy import fit
from core.deploy.apply import force_update
from core.deploy.spec import service_spec
from core.edge.domains import wildcard_exclusions
from core.ownership import stamped
from core.plane import Plane
from core.swarm import SwarmClient


async def desired_spec(
    plane: Plane,
    spec: AppSpec,
    app: str,
    env: str,
    number: int,
    image: str,
    current: dict[str, Any] | None,
    ids: dict[str, str],
    fitted: fit.Fit,
) -> dict[str, Any]:
    """The service Swarm is to run for release ``number``, as ``plan`` shows it and
    ``deploy`` applies it: built from app.yml, routed around other apps' granted names,
    stamped as this control plane's (on a shared swarm) and rolled out in the fitted order."""
    desired = service_spec(
        spec,
        env,
        number,
        image,
        force_update=force_update(current),
        https_port=plane.edge.https_port,
        secret_ids=ids,
        excluded=await wildcard_exclusions(plane.db, app, spec.domains),
    )
    return fit.ordered(stamped(desired, plane.id), fitted.order)


async def placed(swarm: SwarmClient, spec: AppSpec) -> fit.Fit:
    """The rollout order the swarm's Ready nodes allow (``max_per_node``; core/deploy/fit.py)."""
    if spec.placement.max_per_node is None:
        return fit.Fit(spec.rollout.order)
    return fit.fit(spec, await asyncio.to_thread(swarm.nodes))
