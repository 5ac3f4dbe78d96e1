"""The servers room: servers added over SSH, their host keys and the apps they may run."""

from __future__ import annotations

from core.store.schema import servers as schema_servers
from core.store.schema import versions
from rooms.capability import Capability

ROOM = Capability(
    name="servers",
    sections={"server_apps": None},
    tables=("servers", "ssh_keys", "env_servers", "server_outages"),
    migrations=versions(schema_servers),
    commands=(
        "server add",
        "server address",
        "server check",
        "server list",
        "server remove",
        "server trust",
        "ssh-key",
    ),
)
