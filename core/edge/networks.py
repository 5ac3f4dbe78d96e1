"""The edge joins the networks of the apps it routes, and only those.

Each routed service names its own network in the ``traefik.swarm.network`` label
(core/edge/labels.py); the proxy's spec lists shipbot's network and every network so
named (core/edge/proxy.py). Joining one is a service update of the proxy, made only when
that set changes: the first deploy of a routed app environment, or a `proxy setup` after
one went away. Its published ports are host-mode, so the update is stop-first and the old
task lets go of the ports before the new one binds them: requests to every domain go
unanswered for that moment (the README gives the measured gap). ``sync_networks`` in
core/edge/operate.py makes the update, and waits until the new task serves its routes.

Not `docker network connect` on the running Traefik container: it joins without a restart,
but only where a task of that network already runs on Traefik's node, with an address
Swarm's allocator does not know (it may give it to a task later), and Traefik's next task
would not have it (moby/moby#39391).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

NETWORK_LABEL = "traefik.swarm.network"


def routed_networks(services: Iterable[dict[str, Any]]) -> list[str]:
    """The networks Traefik reaches routed services on, from their labels."""
    out = set()
    for service in services:
        labels = service["Spec"].get("Labels") or {}
        if labels.get("traefik.enable") == "true" and labels.get(NETWORK_LABEL):
            out.add(labels[NETWORK_LABEL])
    return sorted(out)
