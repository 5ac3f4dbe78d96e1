"""The composition root: shipbot.yml, the store, the clients and the clock made into one
``Plane`` and its dispatcher; then what the capabilities declare, run on one scheduler.

``Root.open`` is the control plane on this host. Each factory it takes (``clients`` for S3
and HTTP, ``notifier``, ``servers``, ``clock``) is where a test hands in its fake, by the
same road the real one comes. ``Root.run`` is ``shipbot serve``'s housekeeping: read back
from Swarm what nobody saw finish, then every room's schedules and watchers until cancelled.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from commands.dispatch import Dispatcher, StartError
from commands.notify import Notifier
from commands.registry import names
from core.clients import Clients
from core.clock import SYSTEM, Clock
from core.config import CONFIG_FILE, ControlConfig, checked, read_config
from core.engine import NETWORK, Engine
from core.errors import CoreError
from core.plane import Plane
from core.scheduler.clocked import Every, Scheduler
from core.store import Store, shipbot_home
from core.swarm.servers import Servers
from rooms.capability import Capability, Schedule, Watcher
from rooms.registry import ROOMS

Round = Callable[[], Any]  # something ``serve`` adds to every round (its heartbeat file)
NotifierFactory = Callable[[Store, list[Any]], Notifier]
DEFAULT_INTERVAL = 5.0


def own_sections(rooms: Iterable[Capability]) -> dict[str, Any]:
    """The sections rooms declare that ``ControlConfig`` does not read: key → model."""
    return {
        key: model
        for room in rooms
        for key, model in room.sections.items()
        if key not in ControlConfig.model_fields
    }


def split(raw: Any, rooms: Iterable[Capability], where: str) -> tuple[Any, dict[str, Any]]:
    """shipbot.yml's sections: (what ``ControlConfig`` reads, each room's own, validated)."""
    models = own_sections(rooms)
    if not isinstance(raw, dict):
        return raw, {}
    rest = {key: value for key, value in raw.items() if key not in models}
    sections: dict[str, Any] = {}
    for key, model in models.items():
        if key in raw:
            sections[key] = checked(model, raw[key], where, key)
        elif model is not None:
            try:
                sections[key] = model()  # a section with defaults for every key
            except ValidationError:
                sections[key] = None  # a section that must be written to be on
    return rest, sections


class Root:
    def __init__(
        self,
        dispatcher: Dispatcher,
        rooms: Iterable[Capability] = ROOMS,
        sections: Mapping[str, Any] | None = None,
        interval: float = DEFAULT_INTERVAL,
    ) -> None:
        self.dispatcher = dispatcher
        self.rooms = tuple(rooms)
        self.interval = interval
        config = dispatcher.config
        known = {
            key: getattr(config, key)
            for room in self.rooms
            for key in room.sections
            if key in ControlConfig.model_fields
        }
        self.plane.sections.update({**known, **(sections or {})})
        for room in self.rooms:
            for request in room.commands:
                if isinstance(request, str):
                    if request not in names():
                        raise TypeError(f"{room.name}: {request!r} is not a declared command")
                elif not hasattr(request, "spec"):
                    raise TypeError(f"{room.name}: {request.__name__} is not an @command")
            if room.schema is not None:
                self.plane.store.apply(room.schema)

    @classmethod
    def open(
        cls,
        home: Path | None = None,
        rooms: Iterable[Capability] = ROOMS,
        *,
        clients: Clients = NETWORK,
        clock: Clock = SYSTEM,
        servers: Servers | None = None,
        notifier: NotifierFactory = Notifier,
        interval: float = DEFAULT_INTERVAL,
    ) -> Root:
        """The control plane on this host: config and store under ``home``."""
        rooms = tuple(rooms)
        try:
            home = home or shipbot_home()
            raw, sections = split(read_config(home), rooms, str(home / CONFIG_FILE))
            config = checked(ControlConfig, raw, str(home / CONFIG_FILE))
            engine = Engine.open(home, config, servers, clock, clients)
            dispatcher = Dispatcher(engine, config, notifier(engine.store, list(config.notify)))
            root = cls(dispatcher, rooms, sections, interval)
        except (CoreError, OSError, sqlite3.Error, ValueError) as exc:
            raise StartError(f"shipbot cannot start: {exc}") from exc
        dispatcher.reconcile()
        return root

    @property
    def engine(self) -> Engine:
        return self.dispatcher.engine

    @property
    def plane(self) -> Plane:
        return self.dispatcher.engine.plane

    @property
    def config(self) -> ControlConfig:
        return self.dispatcher.config

    @property
    def notifier(self) -> Notifier:
        return self.dispatcher.notifier

    def scheduler(self, rounds: Iterable[Round] = ()) -> Scheduler:
        """Every room's periodic work, and ``rounds`` every ``interval``, on one scheduler
        that reads the plane's clock; not started."""
        scheduler = Scheduler(self.plane.clock)
        for room in self.rooms:
            for item in room.periodic(self):
                if isinstance(item, Watcher):
                    scheduler.watch(item.id, item.run)
                else:
                    scheduler.add(item.id, item.trigger, item.run, (), item.grace)
        for number, work in enumerate(rounds):
            scheduler.add(f"round/{number}", Every(self.interval), _threaded(work))
        return scheduler

    async def run(self, rounds: Iterable[Round] = ()) -> None:
        """Settle what nobody saw finish, then run the schedules until cancelled."""
        await self.dispatcher.settle()
        scheduler = self.scheduler(rounds)
        scheduler.start()
        try:
            await asyncio.get_running_loop().create_future()  # until cancelled
        finally:
            await scheduler.aclose()


def _threaded(work: Round) -> Callable[[], Any]:
    async def run() -> None:
        await asyncio.to_thread(work)

    return run


async def housekeeping(dispatcher: Dispatcher, interval: float) -> None:
    """``shipbot serve``'s periodic work for a dispatcher built elsewhere (tests, scripts)."""
    await Root(dispatcher, interval=interval).run()


__all__ = ["Root", "Schedule", "Watcher", "housekeeping"]
