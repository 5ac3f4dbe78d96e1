"""One swarm client per server, connected on first use and kept.

A server added over SSH that does not answer costs its connect time-out once, not at every
command: the failure is remembered as an outage, and for ``RETRY_SECONDS`` after it a
command that asks for that server is told at once ("… (unreachable since 12:03:00 UTC)"),
while one connect in the background checks whether it is back (the next command then finds
it connected). The control plane's own engine (a local socket) fails at once anyway and is
not remembered. Asks that waited for a dial that failed are told its outage, not dialled
again. With a ``memory`` (the store), outages are shared with other processes: a one-shot
command is told what ``serve`` or the command before it learned (core/swarm/outages.py).
A kept client whose connection dropped (its host stopped) is dialled again, so an outage
that began after the connect is found, and so is the server's return.
Each server connects under its own lock, so one slow server never holds up another.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import AsyncIterator, Callable, Mapping
from typing import Any

from core.clock import SYSTEM, Clock
from core.errors import CoreError, DeployError
from core.events import Event
from core.swarm import SwarmClient
from core.swarm.outages import (
    CONTINUOUS_SECONDS,
    RETRY_SECONDS,
    Memory,
    Outage,
    ServerAway,
    lost,
)

__all__ = ["LOCAL", "RETRY_SECONDS", "Outage", "Servers"]
log = logging.getLogger("shipbot.servers")
LOCAL = "local"


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

    def __init__(self, connectors: Mapping[str, Callable[[], SwarmClient]]) -> None:
        self.connectors = dict(connectors)
        self._clients: dict[str, SwarmClient] = {}
        self.connecting = threading.Lock()  # guards the dicts below, held only briefly
        self._dialing: dict[str, threading.Lock] = {}  # one connect at a time per server
        self.outages: dict[str, Outage] = {}
        self.clock: Clock = SYSTEM
        self.lookup: Lookup | None = None
        self.added: Added = list
        self.spreader: Spreader | None = None
        self.memory: Memory | None = None  # outages shared with other processes (the store)

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
        found = self._clients.get(server)
        if found is not None and not lost(found):
            return found
        return await asyncio.to_thread(self.connect, server)

    def connect(self, server: str) -> SwarmClient:
        """``client`` for a blocking caller (the host's CLI, a worker thread)."""
        with self.connecting:
            client = self._clients.get(server)
            if client is not None and not lost(client):
                return client
            if client is not None:  # its connection dropped (the host stopped): dial again
                del self._clients[server]
        if client is not None:
            log.info("%s: the connection dropped; dialling again", server)
            client.close()
        outage = self._outage(server)
        with self.connecting:
            if outage is not None and self.clock.monotonic() < outage.retry_at:
                raise ServerAway(outage, self.clock.time())
            if outage is not None and not outage.redialing:  # checked again off the caller
                outage.redialing = True
                threading.Thread(target=self._redial, args=(server,), daemon=True).start()
            dialing = self._dialing.setdefault(server, threading.Lock())
        if outage is not None:
            raise ServerAway(outage, self.clock.time())
        return self._dial(server, dialing, None)

    def _outage(self, server: str) -> Outage | None:
        """This process's outage of ``server``, else one another process recorded within
        ``RETRY_SECONDS`` (then adopted: not dialled again until that time is up)."""
        with self.connecting:
            outage = self.outages.get(server)
        if outage is not None or self.memory is None or server in self.connectors:
            return outage
        recorded = self.memory.recall(server)
        left = recorded.tried + RETRY_SECONDS - self.clock.time() if recorded else 0.0
        if recorded is None or left <= 0:
            return None
        retry_at = self.clock.monotonic() + left
        adopted = Outage(recorded.since, recorded.error, recorded.tried, retry_at)
        with self.connecting:
            return self.outages.setdefault(server, adopted)

    def _dial(self, server: str, dialing: threading.Lock, seen: Outage | None) -> SwarmClient:
        """Connect ``server`` (one dial at a time); ``seen``: the outage the caller knew of."""
        with dialing:
            with self.connecting:
                if server in self._clients:
                    return self._clients[server]
                outage = self.outages.get(server)
            # a dial that failed while this one waited for it: told, not dialled again
            if outage is not None and outage is not seen:
                raise ServerAway(outage, self.clock.time())
            connector = self.connectors.get(server)
            if connector is None and self.lookup is not None:
                connector = self.lookup(server)
            if connector is None:
                raise DeployError(self.unknown(server))
            started = self.clock.monotonic()
            log.debug("%s: dialling", server)
            try:
                client = connector()
            except CoreError as exc:
                log.debug("%s: not reached in %.1fs", server, self.clock.monotonic() - started)
                if server in self.connectors:  # an engine of its own fails at once: no outage
                    raise
                self._failed(server, str(exc))
                raise
            log.debug("%s: connected in %.1fs", server, self.clock.monotonic() - started)
            with self.connecting:
                self.outages.pop(server, None)
                self._clients[server] = client
            if self.memory is not None and server not in self.connectors:
                self.memory.clear(server)
            return client

    def _failed(self, server: str, error: str) -> None:
        """Remember the failure as (part of) an outage, here and for other processes."""
        now = self.clock.time()
        with self.connecting:
            before = self.outages.get(server)
        since = before.since if before else now
        if before is None and self.memory is not None:  # another process's, if it goes on
            recorded = self.memory.recall(server)
            if recorded is not None and now - recorded.tried <= CONTINUOUS_SECONDS:
                since = recorded.since
        outage = Outage(since, error, now, self.clock.monotonic() + RETRY_SECONDS)
        with self.connecting:
            self.outages[server] = outage
        if self.memory is not None:
            self.memory.record(server, outage.recorded())

    def _redial(self, server: str) -> None:
        try:
            self._dial(server, self._dialing[server], self.outages.get(server))
        except Exception:  # noqa: BLE001 (remembered as the outage; the next command says it)
            return

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
            self.outages.pop(server, None)
        if client is not None:
            client.close()
        if self.memory is not None and server not in self.connectors:
            self.memory.clear(server)

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
