"""What a capability declares: the shape every room fills in (rooms/registry.py lists them).

- ``sections``: its shipbot.yml sections, each with its own pydantic model. A section the
  ``ControlConfig`` already reads (core/config/__init__.py) is declared here and read there; any
  other is validated by the root with the room's model and put on ``Plane.sections``.
- ``tables`` and ``migrations``: the tables it owns and the numbers of the ``shipbot``
  migrations that made them (its module in core/store/schema/); a new room brings its own
  ``Migrations`` set (core/store/sql.py) in ``schema``, applied by the root, each step once.
- ``commands``: its chat command family, by name: a catalog command (declared in
  commands/catalog/__init__.py, its module imported when first run), or a request class
  registered with ``@command``.
- ``periodic``: its schedules and watchers, built from the root at every start.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Protocol

from pydantic import BaseModel

from commands.dispatch import Dispatcher
from commands.notify import Notifier
from core.config import ControlConfig
from core.engine import Engine
from core.plane import Plane
from core.scheduler.clocked import Trigger
from core.store.migrations import Migrations


class Running(Protocol):
    """What a room's periodic work is built from: the composition root (rooms/root.py)."""

    interval: float  # seconds between rounds

    @property
    def dispatcher(self) -> Dispatcher: ...

    @property
    def engine(self) -> Engine: ...

    @property
    def plane(self) -> Plane: ...

    @property
    def config(self) -> ControlConfig: ...

    @property
    def notifier(self) -> Notifier: ...


@dataclass(frozen=True)
class Schedule:
    """A job on the one scheduler: ``core.scheduler.cron.trigger(cron)`` or ``Every(seconds)``."""

    id: str
    trigger: Trigger
    run: Callable[[], Awaitable[object]]
    grace: float | None = None  # seconds late a run may still start; None: however late


@dataclass(frozen=True)
class Watcher:
    """A long-running coroutine, started with the scheduler and cancelled with it."""

    id: str
    run: Callable[[], Awaitable[object]]


Periodic = Schedule | Watcher


def nothing(root: Running) -> Iterable[Periodic]:
    return ()


@dataclass(frozen=True)
class Capability:
    name: str
    # shipbot.yml key → its model (None: a plain value the ControlConfig types)
    sections: Mapping[str, type[BaseModel] | None] = field(default_factory=dict)
    tables: tuple[str, ...] = ()
    migrations: tuple[int, ...] = ()  # the ``shipbot`` migrations that made ``tables``
    schema: Migrations | None = None  # a room's own migration set, applied by the root
    commands: tuple[str | type, ...] = ()
    periodic: Callable[[Running], Iterable[Periodic]] = nothing
