"""The servers room: servers added over SSH, their host keys and the apps they may run."""

from __future__ import annotations

from commands.catalog import servers
from rooms.capability import Capability

ROOM = Capability(
    name="servers",
    sections={"server_apps": None},
    tables=("servers", "ssh_keys", "env_servers"),
    migrations=(9,),
    commands=(
        servers.ServerAdd,
        servers.ServerCheck,
        servers.ServerList,
        servers.ServerRemove,
        servers.ServerTrust,
        servers.SshKey,
    ),
)
