"""Discord's application commands, derived from the grammar (as Errbot derives arguments and
help from the command itself): every catalog command, its options, their types and the
descriptions come from its ``@command`` declaration, so the chat and Discord cannot drift.

``shipbot serve`` builds its tree from ``discord_tree.json``, which ``python -m
bot.discord_commands`` writes from those declarations (every family imported); so the bot
idles without the families' modules and what they import, each loading with its first
command. tests/test_discord_commands.py fails when the file differs from the declarations.

``deploy APP [REF] [--env ENV]`` becomes ``/deploy app ref env``; a two-word command
becomes a subcommand (``/db create``); a command that is also a group's name (``policy``
beside ``policy diff``) is the group's ``show``. Typed values are never joined into text:
the adapter reads each with the grammar's parser for its field.
"""

from __future__ import annotations

import dataclasses
import inspect
import json
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import discord
from discord import app_commands

from commands.grammar import CommandSpec
from commands.registry import load_all

TREE_FILE = Path(__file__).with_name("discord_tree.json")
BARE = "show"  # the subcommand that runs a group's own command (policy → /policy show)
DESCRIPTION_MAX = 100  # Discord's limit for a command's and an option's description
INTEGER_KINDS = frozenset({"count", "release", "pull"})
KIND_HELP = {
    "app": "a name: a-z, 0-9 and '-'",
    "env": "an environment (default production)",
    "ref": "a branch, tag or commit; an image tag for image apps",
    "count": "a whole number",
    "release": "a release number",
    "text": "text",
    "user": "platform:id, e.g. discord:1234",
    "role": "a role",
    "pattern": "a name pattern with * and ?",
    "domain": "a domain or *.wildcard",
    "key": "a variable name",
    "assignment": "KEY=VALUE",
    "pull": "a pull request number",
    "argv": "the command and its arguments, quoted as in a shell",
    "addresses": "IPv4/IPv6 addresses, comma-separated",
    "flag": "on or off",
}
FIELD_HELP = {  # where a field's name says more than its kind
    "break_glass": "admins only: skip the approval, with this reason (audited and announced)",
    "dry_run": "show what would change, change nothing",
    "image": "deploy this image (a full reference) instead of building",
}

Run = Callable[[discord.Interaction, str, dict[str, Any]], Awaitable[None]]
Complete = Callable[..., Awaitable[list[app_commands.Choice[str]]]]


@dataclass(frozen=True)
class Option:
    name: str
    kind: str
    description: str
    required: bool

    @property
    def annotation(self) -> Any:
        base = bool if self.kind == "flag" else int if self.kind in INTEGER_KINDS else str
        return base if self.required else base | None


@dataclass(frozen=True)
class Entry:
    """One catalog command as Discord shows it: ``path`` is (command,) or (group, sub)."""

    path: tuple[str, ...]
    name: str  # the command's own words, as typed in chat
    description: str
    options: tuple[Option, ...]


def _cap(text: str) -> str:
    return text if len(text) <= DESCRIPTION_MAX else text[: DESCRIPTION_MAX - 1] + "…"


def options_of(spec: CommandSpec) -> tuple[Option, ...]:
    """The command's fields as Discord options, required first (Discord's order)."""
    options = []
    for field in dataclasses.fields(spec.request):
        meta = field.metadata
        kind = meta["kind"]
        required = bool(meta.get("positional")) and not meta.get("optional")
        help_ = FIELD_HELP.get(field.name) or KIND_HELP[kind]
        label = f"{meta['metavar']} ({help_})" if "metavar" in meta else help_
        options.append(Option(field.name, kind, _cap(label), required))
    return tuple(sorted(options, key=lambda o: not o.required))


def declared() -> list[Entry]:
    """Every catalog command, placed in Discord's tree, from its declaration (every family's
    module imported)."""
    registry = load_all()
    groups = {name.split()[0] for name in registry if " " in name}
    placed = []
    for name, spec in sorted(registry.items()):
        words = tuple(name.split())
        path = (words[0], BARE) if len(words) == 1 and words[0] in groups else words
        paragraph = spec.help.split("\n\n")[0]
        placed.append(Entry(path, name, _cap(" ".join(paragraph.split())), options_of(spec)))
    return placed


def encode(entries: Iterable[Entry]) -> str:
    """``discord_tree.json``'s text: one command a line, so a change reads as one line."""
    lines = (json.dumps(dataclasses.asdict(e), ensure_ascii=False) for e in entries)
    return "[\n" + ",\n".join(lines) + "\n]\n"


def entries(text: str | None = None) -> list[Entry]:
    """The tree ``discord_tree.json`` (or ``text``) holds, no family imported."""
    return [
        Entry(
            tuple(e["path"]),
            e["name"],
            e["description"],
            tuple(Option(**o) for o in e["options"]),
        )
        for e in json.loads(TREE_FILE.read_text() if text is None else text)
    ]


def _command(entry: Entry, run: Run, complete: Complete) -> app_commands.Command[Any, ..., None]:
    name = entry.name

    async def callback(interaction: discord.Interaction, **values: Any) -> None:
        await run(interaction, name, values)

    params = [
        inspect.Parameter("interaction", inspect.Parameter.POSITIONAL_OR_KEYWORD),
        *(
            inspect.Parameter(
                o.name,
                inspect.Parameter.KEYWORD_ONLY,
                annotation=o.annotation,
                default=inspect.Parameter.empty if o.required else None,
            )
            for o in entry.options
        ),
    ]
    callback.__signature__ = inspect.Signature(params)  # type: ignore[attr-defined]
    callback.__discord_app_commands_param_description__ = {  # type: ignore[attr-defined]
        o.name: o.description for o in entry.options
    }
    if any(o.name == "app" and o.kind == "app" for o in entry.options):
        callback.__discord_app_commands_param_autocomplete__ = {  # type: ignore[attr-defined]
            "app": complete
        }
    return app_commands.Command(
        name=entry.path[-1], description=entry.description, callback=callback
    )


def install(tree: app_commands.CommandTree[Any], run: Run, complete: Complete) -> None:
    """Add every catalog command to ``tree``: ``run(interaction, name, values)`` runs one."""
    grouped: dict[str, list[Entry]] = {}
    for entry in entries():
        if len(entry.path) == 1:
            tree.add_command(_command(entry, run, complete))
        else:
            grouped.setdefault(entry.path[0], []).append(entry)
    for name, members in grouped.items():
        subs = ", ".join(e.path[1] for e in members)
        group = app_commands.Group(name=name, description=_cap(f"{name}: {subs}"))
        for entry in members:
            group.add_command(_command(entry, run, complete))
        tree.add_command(group)


if __name__ == "__main__":
    TREE_FILE.write_text(encode(declared()))
    print(f"wrote {TREE_FILE}")
