"""`help`: the commands by family, one family, a command group, or one command's usage."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator, Iterable

from commands.catalog.context import Context
from commands.catalog.families import BY_KEY, FAMILIES, Family, family_of
from commands.grammar import CommandSpec, UsageError, arg, command, did_you_mean
from commands.permissions import PUBLIC
from commands.registry import load_all
from commands.replies import Index, Message, Reply, Table
from core.config.parts import DEFAULT_ENV


@command("help", permission=PUBLIC, examples=("help", "help data", "help db", "help deploy"))
class Help:
    """Show the commands by family, one family (`help data`), a group (`help db`) or one
    command's usage and examples (`help deploy`)."""

    topic: str | None = arg("text", "TOPIC", optional=True)
    sub: str | None = arg("text", "SUBCOMMAND", optional=True)

    async def run(self, ctx: Context) -> AsyncIterator[Reply]:
        registry = load_all()
        mine = in_order(s for s in registry.values() if ctx.policy.may_ever(ctx.user, s.permission))
        if self.topic is None:
            yield overview(mine)
            return
        name = " ".join(part for part in (self.topic, self.sub) if part)
        spec = registry.get(name)
        if spec is not None:
            yield Message(usage(spec))
            return
        group = [s for s in mine if s.name.startswith(name + " ")]
        family = BY_KEY.get(name)
        if group or family is not None:
            shown = group or [s for s in mine if family_of(s) is family]
            title = f"{name} commands" if group else f"{family.title} (`help {family.key}`)"
            yield listing(title, shown)
            return
        words = {s.name for s in registry.values()} | {s.name.split()[0] for s in registry.values()}
        raise UsageError(
            f"help: no command or family {name!r}{did_you_mean(name, words | set(BY_KEY))}; "
            f"the families are {', '.join(BY_KEY)}: `help FAMILY` lists one, `help` them all"
        )


def in_order(specs: Iterable[CommandSpec]) -> list[CommandSpec]:
    """By family, then by module as the family lists them, then as the module declares them."""
    order = list(load_all())

    def key(spec: CommandSpec) -> tuple[int, int, int]:
        family = family_of(spec)
        module = spec.request.__module__.rsplit(".", 1)[-1]
        return FAMILIES.index(family), family.modules.index(module), order.index(spec.name)

    return sorted(specs, key=key)


def overview(specs: list[CommandSpec]) -> Index:
    """Each family's commands by name only: short enough for one chat message."""
    rows = []
    for family in FAMILIES:
        names = [s.name for s in specs if family_of(s) is family]
        if names:
            rows.append((f"{family.title} · help {family.key}", " · ".join(names)))
    note = (
        "`help FAMILY` lists a family with usage, `help COMMAND` shows usage and examples. "
        f"Commands with --env act on {DEFAULT_ENV} when it is not given."
    )
    return Index(("family", "commands"), tuple(rows), title="shipbot commands", note=note)


def listing(title: str, specs: list[CommandSpec]) -> Table:
    return Table(("command", "what it does"), tuple((s.usage, s.summary) for s in specs), title)


def usage(spec: CommandSpec) -> str:
    lines = [f"usage: {spec.usage}", "", spec.help]
    if any(f.name == "env" for f in dataclasses.fields(spec.request)):
        lines += ["", f"--env defaults to {DEFAULT_ENV}."]
    if spec.examples:
        lines += ["", "examples:", *(f"  {example}" for example in spec.examples)]
    return "\n".join(lines)


__all__ = ["Family", "Help"]
