"""Discord's command tree, derived from the grammar: every catalog command and option is
there, and a subcommand runs the canonical command text (the local fake REST API)."""

from __future__ import annotations

import dataclasses
from typing import Any

import discord

from bot.discord_commands import BARE, TREE_FILE, declared, encode, entries
from commands.grammar import REGISTRY
from tests import test_discord_adapter as adapter
from tests.test_discord_adapter import ADMIN, Harness, slash, until

harness = adapter.harness  # the adapter tests' bot on the fake API


def test_every_catalog_command_and_option_is_in_the_discord_tree(harness: Harness):
    """The tree is derived from the grammar: a command or option added to the catalog is
    on Discord with nothing written twice."""
    tree = harness.bot.tree
    groups = {name.split()[0] for name in REGISTRY if " " in name}
    for name, spec in REGISTRY.items():
        words = name.split()
        top = tree.get_command(words[0])
        assert top is not None, name
        if words[0] in groups:
            assert isinstance(top, discord.app_commands.Group), name
            command = top.get_command(words[1] if len(words) > 1 else BARE)
        else:
            command = top
        assert isinstance(command, discord.app_commands.Command), name
        assert command.description and len(command.description) <= 100
        fields = {f.name: f for f in dataclasses.fields(spec.request)}
        assert {p.name for p in command.parameters} == set(fields), name
        for param in command.parameters:
            meta = fields[param.name].metadata
            assert param.required == (bool(meta.get("positional")) and not meta["optional"])
            assert param.description and len(param.description) <= 100
    deploy = tree.get_command("deploy")
    assert isinstance(deploy, discord.app_commands.Command)
    image = deploy.get_parameter("image")
    assert image is not None and image.type is discord.AppCommandOptionType.string
    assert deploy.get_parameter("dry_run").type is discord.AppCommandOptionType.boolean
    assert tree.get_command("ship") is not None  # any command, typed as text


def test_the_tree_file_says_what_the_declarations_say():
    """serve builds the tree from bot/discord_tree.json, no family imported; after a change
    to a command's declaration, `python -m bot.discord_commands` writes the file again."""
    assert entries() == declared(), "run `python -m bot.discord_commands`"
    assert TREE_FILE.read_text() == encode(declared())
    assert {e.name for e in entries()} == set(REGISTRY)  # declared() loaded every family


def subcommand(group: str, name: str, user_id: str, **options: Any) -> dict[str, Any]:
    payload = slash(group, user_id)
    kinds = {str: 3, int: 4, bool: 5}
    inner = [{"name": k, "type": kinds[type(v)], "value": v} for k, v in options.items()]
    payload["data"]["options"] = [{"name": name, "type": 1, "options": inner}]
    return payload


async def test_a_subcommand_and_a_groups_own_command_run_their_canonical_text(harness: Harness):
    payload = subcommand("apps", "list", ADMIN)
    harness.dispatch(payload)
    (answer,) = await until(lambda: harness.followups(payload["token"]))
    assert answer.body["content"].startswith("no apps yet")  # `apps list` ran
    payload = subcommand("policy", BARE, ADMIN, app="shop")
    harness.dispatch(payload)
    (answer,) = await until(lambda: harness.followups(payload["token"]))
    assert answer.body["content"].startswith("❌ no app named 'shop'")  # `policy shop` ran
    payload = slash("deploy", "700", app="shop", image="registry.local/shop:1")
    harness.dispatch(payload)
    await until(lambda: harness.followups(payload["token"]))
    # the audit row is written as the request's chain ends, just after its last reply
    store = harness.dispatcher.engine.store
    (audit,) = await until(lambda: [a for a in store.audit_log() if a["app"] == "shop"])
    assert audit["command"] == "deploy shop --image registry.local/shop:1"
