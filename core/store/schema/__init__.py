"""The ``shipbot`` migration set, one module per capability: each room's module lists its
steps in ``STEPS``, and ``history()`` puts every step of every module in version order.

A step's name is ``v<N>_<what>`` and is recorded in ``_sqlite_migrations`` once applied, so
a step is never renamed or renumbered. Adding one is one module's change: a function in its
room's module, listed in that module's ``STEPS``, numbered after the highest in use. A new
capability adds its module to ``MODULES``.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from types import ModuleType

from core.store.schema import control, data, deploy, edge, pipelines, servers, watch
from core.store.sql import Database

Step = Callable[[Database], None]

# room name → the module holding its steps
MODULES: dict[str, ModuleType] = {
    "control": control,
    "data": data,
    "deploy": deploy,
    "edge": edge,
    "pipelines": pipelines,
    "servers": servers,
    "watch": watch,
}
# numbers no step ever shipped with (skipped before the set was split per room); no new
# step takes them, so HISTORY is otherwise 1..N
NEVER_USED = frozenset({15, 19})
_NAME = re.compile(r"^v([1-9][0-9]*)_[a-z0-9_]+$")


def version(step: Step) -> int:
    """The number in a step's name (``v7_backups`` → 7)."""
    match = _NAME.match(step.__name__)
    if not match:
        raise ValueError(f"migration {step.__name__!r} is not named v<number>_<what>")
    return int(match.group(1))


def versions(module: ModuleType) -> tuple[int, ...]:
    """The numbers of one room's steps, in order: what its ``Capability`` declares."""
    return tuple(sorted(version(step) for step in module.STEPS))


def history(modules: dict[str, ModuleType] = MODULES) -> tuple[Step, ...]:
    """Every module's steps in version order; a number used twice or one of
    ``NEVER_USED`` is refused, so two rooms cannot claim one step."""
    steps = sorted((step for module in modules.values() for step in module.STEPS), key=version)
    numbers = [version(step) for step in steps]
    twice = sorted({n for n in numbers if numbers.count(n) > 1})
    if twice:
        raise ValueError(f"migration numbers used twice: {twice}")
    reused = sorted(NEVER_USED.intersection(numbers))
    if reused:
        raise ValueError(f"migration numbers {reused} are retired; take {max(numbers) + 1}")
    return tuple(steps)
