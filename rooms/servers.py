"""The servers room: servers added over SSH, their host keys and the apps they may run."""

from __future__ import annotations

from commands.catalog import servers
from core.store.schema import servers as schema_servers
from core.store.schema import versions
from rooms.capability import Capability

ROOM = Capability(
    name="servers",
    sections={"server_apps": None},
    tables=("servers", "ssh_keys", "env_servers"),
    migrations=versions(schema_servers),
    commands=(
        servers.ServerAdd,
        servers.ServerAddress,
        servers.ServerCheck,
        servers.ServerList,
        servers.ServerRemove,
        servers.ServerTrust,
        servers.SshKey,
    ),
)
