"""One swarm client per server, connected on first use and kept.

Servers connect side by side: one whose host is away (an SSH connect that times out after
10 s) holds up no other. Its failure is kept for ``RETRY_AFTER_SECONDS``: the next asks
within that time (a command reads a server more than once) get it at once, not after
another time-out, so a command that concerns it still answers within 15 s.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import AsyncIterator, Callable, Mapping
from typing import Any

from core.errors import CoreError, DeployError
from core.events import Event
from core.swarm import SwarmClient

LOCAL = "local"
RETRY_AFTER_SECONDS = 10.0


def _connect_local() -> SwarmClient:
    # the docker SDK (and paramiko under it) loads with the first call to the engine, not
    # with every command line: `whoami` or `help` never pay for it
    from core.swarm.docker_api import DockerSwarm

    return DockerSwarm.connect()


Connector = Callable[[], SwarmClient]
# the servers added from chat (core/servers/remote.py): a name's connector, or None
Lookup = Callable[[str], Connector | None]
# the names of the servers added from chat that can be named (their swarms' managers)
Added = Callable[[], list[str]]
# after a build on a server's manager: bring the image to the other nodes of its swarm
# where the placement (core.swarm.nodes.Where, or None: anywhere) lets tasks run
Spreader = Callable[[str, str, Any], AsyncIterator[Event]]


class Servers:
    """Swarm clients keyed by server name; each is connected once, when first asked for."""

    def __init__(
        self,
        connectors: Mapping[str, Callable[[], SwarmClient]],
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.connectors = dict(connectors)
        self._clients: dict[str, SwarmClient] = {}
        self.connecting = threading.Lock()  # guards the maps; each server has its own lock
        self._locks: dict[str, threading.Lock] = {}
        self._failed: dict[str, tuple[float, CoreError]] = {}
        self.monotonic = monotonic
        self.lookup: Lookup | None = None
        self.added: Added = list
        self.spreader: Spreader | None = None

    @classmethod
    def local(cls, connect: Callable[[], SwarmClient] | None = None) -> Servers:
        return cls({LOCAL: connect or _connect_local})

    @property
    def names(self) -> list[str]:
        return sorted(self.connectors)

    @property
    def has_local(self) -> bool:
        """Whether this control plane has an engine of its own (shipbot.yml ``local:``)."""
        return LOCAL in self.connectors

    def nameable(self) -> list[str]:
        """Every server a command may name: the built-in ones, then those added from chat."""
        return [*self.names, *sorted(set(self.added()) - set(self.connectors))]

    async def client(self, server: str) -> SwarmClient:
        if server in self._clients:
            return self._clients[server]
        return await asyncio.to_thread(self.connect, server)

    def connect(self, server: str) -> SwarmClient:
        """``client`` for a blocking caller (the host's CLI, a worker thread)."""
        with self.connecting:
            if server in self._clients:
                return self._clients[server]
            lock = self._locks.setdefault(server, threading.Lock())
        with lock:
            with self.connecting:
                if server in self._clients:
                    return self._clients[server]
                failed = self._failed.get(server)
            if failed is not None and self.monotonic() - failed[0] < RETRY_AFTER_SECONDS:
                raise failed[1]
            connector = self.connectors.get(server)
            if connector is None and self.lookup is not None:
                connector = self.lookup(server)
            if connector is None:
                raise DeployError(self.unknown(server))
            try:
                client = connector()
            except CoreError as exc:
                with self.connecting:
                    self._failed[server] = (self.monotonic(), exc)
                raise
            with self.connecting:
                self._failed.pop(server, None)
                self._clients[server] = client
            return client

    def unknown(self, server: str) -> str:
        """What to say when ``server`` is asked for and there is none of that name."""
        known = ", ".join(self.nameable()) or "none yet"
        if server == LOCAL:
            return (
                f"this control plane has no engine of its own (shipbot.yml `local: false`): "
                f"name the server to act on (known: {known}; `server add` adds one)"
            )
        return f"no server named {server!r} (known: {known}; `server list` shows them)"

    def forget(self, server: str) -> None:
        """Drop a remote server's client (it was removed, or its host key was replaced)."""
        with self.connecting:
            client = self._clients.pop(server, None)
            self._failed.pop(server, None)
        if client is not None:
            client.close()

    async def spread(self, server: str, image: str, where: Any = None) -> AsyncIterator[Event]:
        """Bring an image built on ``server``'s manager to the other nodes of its swarm."""
        if server in self.connectors or self.spreader is None:
            return
        async for event in self.spreader(server, image, where):
            yield event

    def close(self) -> None:
        for client in self._clients.values():
            client.close()
        self._clients.clear()
