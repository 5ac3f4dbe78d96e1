"""Whether a (re)started proxy serves its routers yet.

Its published ports are host-mode: Docker sends a new Traefik task traffic as soon as the
container starts, whatever its health check says, and Traefik answers 404 until its swarm
provider has listed the services. Swarm cannot hold that traffic back, so shipbot does the
next best thing: after a restart it caused, it says the edge runs again only once the
routers are loaded. The proxy carries a router of its own (``ready_labels`` in
core/edge/proxy.py); its swarm provider reads it in the same list as every routed app's, so
the first 200 from it means the apps' routers are in too.
"""

from __future__ import annotations

import http.client
from collections.abc import Callable

from core.edge.proxy import READY_HOST

READY_SECONDS = 90.0
POLL_SECONDS = 0.25

EdgeReady = Callable[[str, int], bool]  # (address, http port) → the proxy's router answered


def edge_ready(address: str, port: int) -> bool:
    """One GET of the proxy's own router through its published HTTP port."""
    conn = http.client.HTTPConnection(address, port, timeout=2)
    try:
        conn.request("GET", "/", headers={"Host": READY_HOST})
        response = conn.getresponse()
        response.read()
        return response.status == 200
    except (OSError, http.client.HTTPException):
        return False
    finally:
        conn.close()
