"""One swarm client per server, connected on first use and kept."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Mapping

from core.errors import DeployError
from core.swarm import SwarmClient

LOCAL = "local"


class Servers:
    """Swarm clients keyed by server name; each is connected once, when first asked for."""

    def __init__(self, connectors: Mapping[str, Callable[[], SwarmClient]]) -> None:
        self._connectors = dict(connectors)
        self._clients: dict[str, SwarmClient] = {}
        self._connecting = threading.Lock()

    @classmethod
    def local(cls, connect: Callable[[], SwarmClient] | None = None) -> Servers:
        if connect is None:
            from core.swarm.docker_api import DockerSwarm  # noqa: PLC0415 (the SDK costs start-up)

            connect = DockerSwarm.connect
        return cls({LOCAL: connect})

    @property
    def names(self) -> list[str]:
        return sorted(self._connectors)

    async def client(self, server: str = LOCAL) -> SwarmClient:
        if server not in self._connectors:
            raise DeployError(f"no server named {server!r} (known: {', '.join(self.names)})")
        if server in self._clients:
            return self._clients[server]
        return await asyncio.to_thread(self._connect, server)

    def _connect(self, server: str) -> SwarmClient:
        with self._connecting:
            if server not in self._clients:
                self._clients[server] = self._connectors[server]()
            return self._clients[server]

    def close(self) -> None:
        for client in self._clients.values():
            client.close()
        self._clients.clear()
