"""Every capability ``shipbot serve`` runs, one line each (rooms/capability.py)."""

from rooms import control, data, deploy, edge, pipelines, servers, watch
from rooms.capability import Capability

ROOMS: tuple[Capability, ...] = (
    control.ROOM,
    deploy.ROOM,
    edge.ROOM,
    data.ROOM,
    servers.ROOM,
    watch.ROOM,
    pipelines.ROOM,
)
