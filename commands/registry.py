"""Where a command is found by name. ``REGISTRY`` holds the spec of every command registered
(``@command``, commands/grammar.py); ``DECLARED`` the module that registers each command
(commands/catalog declares them all), so a command is known by name at once and its family's
module, with what it needs, loads when one of its commands is first looked up."""

from __future__ import annotations

import importlib
from collections.abc import Iterable
from typing import Any

# name → its commands.grammar.CommandSpec (typed Any here: the grammar imports this module,
# and this one never imports the grammar back)
Spec = Any
REGISTRY: dict[str, Spec] = {}
DECLARED: dict[str, str] = {}  # command name → the module that registers it when imported


def declare(module: str, names: Iterable[str]) -> None:
    """``names`` are registered by ``module``, imported when one of them is first needed."""
    for name in names:
        DECLARED[name] = module


def names() -> list[str]:
    """Every command's name, loaded or only declared."""
    return [*DECLARED, *(name for name in REGISTRY if name not in DECLARED)]


def lookup(name: str) -> Spec | None:
    """The command called ``name``, its module imported if it was not yet; None if none."""
    if name not in REGISTRY and name in DECLARED:
        importlib.import_module(DECLARED[name])
    return REGISTRY.get(name)


def named(name: str) -> Spec:
    """The command called ``name``, which must exist."""
    found = lookup(name)
    if found is None:
        raise LookupError(f"{name!r} is declared by {DECLARED.get(name)} but not registered")
    return found


def load_all() -> dict[str, Spec]:
    """Every command, each declared module imported (help, Discord's tree, completion)."""
    for module in dict.fromkeys(DECLARED.values()):
        importlib.import_module(module)
    return REGISTRY
