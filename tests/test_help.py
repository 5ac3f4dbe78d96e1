"""`help` reads well: families that fit one chat message, only what the user may run, one
family or group on request, whole sentences, and a "did you mean" for a typo."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from bot.discord_render import index_embed
from bot.slack_render import render
from bot.terminal import PlainLines
from commands.catalog.families import FAMILIES, family_of
from commands.dispatch import Dispatcher
from commands.grammar import REGISTRY
from commands.replies import Index, Message, Table, decode, encode
from tests.chat import failure, say

ADMIN = "console:root"
VIEWER = "console:vee"


@pytest.fixture
def bot(tmp_path: Path, monkeypatch) -> Dispatcher:
    monkeypatch.setenv("DOCKER_HOST", "unix:///nonexistent/docker.sock")
    (tmp_path / "shipbot.yml").write_text(f"admins: [{ADMIN}]\n")
    opened = Dispatcher.open(tmp_path)
    yield opened
    opened.close()


def slack_text(blocks: list[dict]) -> str:
    texts = [b["text"]["text"] for b in blocks if b["type"] == "section"]
    texts += [e["text"] for b in blocks if b["type"] == "context" for e in b["elements"]]
    return "\n".join(texts)


def test_every_command_is_in_one_family_and_every_summary_is_a_whole_sentence():
    for spec in REGISTRY.values():
        assert family_of(spec) in FAMILIES
        assert spec.summary.endswith((".", ")", "`")), spec.name
        assert spec.help.replace("\n", " ").startswith(spec.summary[:-1]), spec.name
    keys = [family.key for family in FAMILIES]
    assert len(keys) == len(set(keys))


async def test_the_admin_overview_lists_every_command_by_family_in_one_slack_message(bot):
    [index] = await say(bot, "help", ADMIN)
    assert isinstance(index, Index)
    listed = [name for _, names in index.rows for name in names.split(" · ")]
    assert sorted(listed) == sorted(REGISTRY)
    assert [row[0] for row in index.rows][:2] == [
        "apps & deploys · help deploys",
        "running · help running",
    ]
    _, blocks = render(index)
    assert len(slack_text(blocks)) < 3000
    assert all(b["text"]["text"].count("*") >= 2 for b in blocks if b["type"] == "section")
    embed, overflow = index_embed(index)
    assert overflow == [] and len(embed.fields) == len(index.rows)
    assert embed.fields[0].value.splitlines()[:2] == ["apps add", "apps list"]
    assert decode(encode(index)) == index  # the outbox keeps it whole


async def test_a_viewer_sees_only_what_they_may_run(bot):
    await say(bot, f"grant {VIEWER} viewer", ADMIN)
    [index] = await say(bot, "help", VIEWER)
    shown = {name for _, names in index.rows for name in names.split(" · ")}
    assert {"status", "releases", "help", "whoami"} <= shown
    assert not shown & {"deploy", "grant", "db create", "server add", "proxy setup"}
    [family] = await say(bot, "help deploys", VIEWER)
    assert "deploy APP [REF] [--env ENV]" not in [row[0] for row in family.rows]


async def test_a_family_a_group_and_a_command(bot):
    [family] = await say(bot, "help data", ADMIN)
    assert isinstance(family, Table) and not isinstance(family, Index)
    assert family.title == "data & backups (`help data`)"
    assert [row[0].split(" [")[0].split(" NAME")[0] for row in family.rows][:3] == [
        "db create KIND",
        "db list",
        "db status",
    ]
    [group] = await say(bot, "help db", ADMIN)
    assert group.title == "db commands"
    assert [row[0].split()[1] for row in group.rows] == [
        "create", "list", "status", "attach", "detach", "remove",
    ]  # fmt: skip
    [apps] = await say(bot, "help apps", ADMIN)
    assert [row[0].split()[:2] for row in apps.rows] == [
        ["apps", "add"], ["apps", "list"], ["apps", "remove"],
    ]  # fmt: skip
    [usage] = await say(bot, "help apps add", ADMIN)
    assert isinstance(usage, Message) and usage.text.startswith("usage: apps add NAME [--path DIR]")


async def test_a_typo_gets_a_did_you_mean(bot):
    typo = failure(await say(bot, "help deplo", ADMIN))
    families = (
        "the families are deploys, running, variables, access, edge, data, servers, "
        "pipelines, notifications: `help FAMILY` lists one, `help` them all"
    )
    assert typo.message == f"help: no command or family 'deplo' (did you mean deploy?); {families}"
    assert "did you mean data?" in failure(await say(bot, "help dta", ADMIN)).message
    nosuch = failure(await say(bot, "help nosuch", ADMIN))
    assert nosuch.message == f"help: no command or family 'nosuch'; {families}"


async def test_the_console_prints_the_table_and_its_note(bot, tmp_path):
    [index] = await say(bot, "help", ADMIN)
    path = tmp_path / "out.txt"
    with path.open("w") as stream:
        PlainLines(stream).show(index)
    lines = path.read_text().splitlines()
    assert lines[0] == "shipbot commands"
    assert lines[-1].startswith("`help FAMILY` lists a family with usage")
    assert any(line.startswith("data & backups · help data") for line in lines)


async def test_an_unknown_command_answers_did_you_mean_at_once(bot):
    await say(bot, "whoami", ADMIN)  # the dispatcher is warm, as in a running console
    started = time.perf_counter()
    typo = failure(await say(bot, "deplyo hello", ADMIN))
    elapsed = time.perf_counter() - started
    assert typo.message.startswith("unknown command 'deplyo' (did you mean deploy?)")
    assert elapsed < 0.5, f"{elapsed:.3f} s"
