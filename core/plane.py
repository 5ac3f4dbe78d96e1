"""What every operation of the engine needs, in one record: state, keys, servers, home.

Operations are functions of a ``Plane`` (``core.deploy``, ``core.apps``); ``core.engine``
is the facade the chat side calls.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from core.clients import Clients
from core.clock import SYSTEM, Clock
from core.config import BuildConfig, EdgeConfig
from core.secrets import Vault
from core.store import Store
from core.swarm.servers import LOCAL, Servers

T = TypeVar("T")


class OffLoop:
    """Store calls run in a worker thread, so a busy SQLite file never blocks the event loop
    (the store serialises its own connection). Each call is written out where it is made,
    typed and visible to a reader (no ``__getattr__`` proxy)::

        live = await plane.db.in_thread(lambda: plane.store.live_release(app, env))
    """

    def __init__(self, store: Store) -> None:
        self.store = store

    async def in_thread(self, call: Callable[[], T]) -> T:
        """``call()`` in a worker thread: its result, or what it raised."""
        return await asyncio.to_thread(call)


@dataclass
class Plane:
    store: Store
    vault: Vault
    servers: Servers
    home: Path
    # host folders app.yml may bind-mount (shipbot.yml ``host_paths``); none by default
    host_paths: tuple[str, ...] = ()
    # apps each server added over SSH may run (shipbot.yml ``server_apps``); none by default
    server_apps: dict[str, tuple[str, ...]] = field(default_factory=dict)
    server: str = LOCAL  # the control plane's own server: apps without app.yml `server:` run here
    edge: EdgeConfig = field(default_factory=EdgeConfig)  # shipbot.yml's ``edge:``
    build: BuildConfig = field(default_factory=BuildConfig)  # shipbot.yml's ``build:``
    clock: Clock = SYSTEM  # time, injected (core/clock.py)
    # S3 and HTTP, through the root's factories (core/clients.py; the engine's NETWORK)
    clients: Clients = field(default_factory=Clients)
    # shipbot.yml sections read by the composition root for capabilities' own models
    sections: dict[str, Any] = field(default_factory=dict)
    # whether the proxy serves its routers: (address, http port) -> bool; None is the real
    # probe (core/edge/ready.py), a test passes its own
    edge_ready: Callable[[str, int], bool] | None = None
    db: OffLoop = field(init=False)

    def __post_init__(self) -> None:
        self.db = OffLoop(self.store)
        self.servers.clock = self.clock  # an outage's time and its retry

    @functools.cached_property
    def id(self) -> str:
        """This control plane's id: every service it makes carries it (core/ownership.py)."""
        return self.store.plane_id()
