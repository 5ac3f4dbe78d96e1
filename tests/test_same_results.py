"""One table of command texts run through the console, Slack and Discord: same results."""

from __future__ import annotations

import io
import json
from pathlib import Path

import aiohttp
import discord
import pytest
from rich.console import Console

from bot.console import say as console_say
from bot.discord_adapter import DiscordBot
from bot.slack import SlackBot, web_client
from bot.terminal import Screen
from commands.dispatch import Dispatcher
from tests import test_discord_adapter as d
from tests import test_slack as s
from tests.fake_discord_api import FakeDiscord
from tests.fake_slack import FakeSlack

DISCORD_ADMIN = "800000000000000009"
ME = {"console": "console:ops", "slack": "slack:UOPS", "discord": f"discord:{DISCORD_ADMIN}"}

# (text, what every platform must show); {me} is the asker's own id
CASES = [
    ("whoami", "you are {me} (bootstrap admin from shipbot.yml)"),
    ("help deploy", "usage: deploy APP [REF] [--env ENV] [--dry-run]"),
    ("apps list", "no apps yet: register one with `apps add NAME --path DIR`"),
    ("deploy 'hello;rm'", "deploy: 'hello;rm' is not an app name"),
    ("rollback nosuch", "no app named 'nosuch'"),
    ("grants {me}", "shipbot.yml"),
    ("launch rockets", "unknown command 'launch'"),
]


@pytest.fixture
async def platforms(tmp_path: Path, monkeypatch):
    home = tmp_path / "home"
    home.mkdir()
    (home / "shipbot.yml").write_text(f"admins: [{', '.join(ME.values())}]\n")
    dispatcher = Dispatcher.open(home)
    slack_fake, discord_fake = await FakeSlack().start(), await FakeDiscord().start()
    monkeypatch.setattr(discord.http.Route, "BASE", discord_fake.base)
    slack_bot = SlackBot(
        dispatcher, web_client("xoxb-test", slack_fake.base_url), signing_secret=s.SECRET
    )
    runner = await slack_bot.serve_http("127.0.0.1", 0)
    host, port = runner.addresses[0][:2]
    discord_bot = DiscordBot(dispatcher)
    await discord_bot.client.login("fake-token")
    yield dispatcher, slack_fake, f"http://{host}:{port}/slack/events", discord_fake, discord_bot
    await discord_bot.client.close()
    await runner.cleanup()
    dispatcher.close()
    await slack_fake.stop()
    await discord_fake.stop()


async def on_console(dispatcher: Dispatcher, text: str) -> str:
    console = Console(file=io.StringIO(), width=300, record=True)
    await console_say(dispatcher, Screen(console), ME["console"], text)
    return console.export_text()


async def on_slack(fake: FakeSlack, url: str, text: str) -> str:
    before = len(fake.calls)
    body = s.slash("/ship", text, "UOPS", response_url=fake.response_url())
    async with (
        aiohttp.ClientSession() as session,
        session.post(url, data=body.encode(), headers=s.signed(body)) as response,
    ):
        assert response.status == 200
    shown = ("chat.postMessage", "chat.postEphemeral", "response_url")
    await s.until(lambda: any(c.method in shown for c in fake.calls[before:]))
    return "\n".join(json.dumps(c.args, ensure_ascii=False) for c in fake.calls[before:])


async def on_discord(fake: FakeDiscord, bot: DiscordBot, text: str) -> str:
    payload = d.slash("ship", DISCORD_ADMIN, command=text)
    bot.client._connection.parsers["INTERACTION_CREATE"](payload)
    prefix = f"/webhooks/{d.APP_ID}/{payload['token']}"
    calls = await s.until(lambda: [c for c in fake.calls if c.path.startswith(prefix)])
    return "\n".join(json.dumps(c.body, ensure_ascii=False) for c in calls)


@pytest.mark.parametrize(("text", "expected"), CASES)
async def test_same_text_same_result_everywhere(platforms, text: str, expected: str):
    dispatcher, slack_fake, slack_url, discord_fake, discord_bot = platforms
    shown = {
        "console": await on_console(dispatcher, text.format(me=ME["console"])),
        "slack": await on_slack(slack_fake, slack_url, text.format(me=ME["slack"])),
        "discord": await on_discord(discord_fake, discord_bot, text.format(me=ME["discord"])),
    }
    for platform, output in shown.items():
        want = expected.format(me=ME[platform])
        flat = " ".join(output.replace("\\n", " ").split())
        assert " ".join(want.split()) in flat, (platform, output)
