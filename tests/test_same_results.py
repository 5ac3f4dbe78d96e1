"""One table of command texts run through the console, Slack and Discord: same results; and
the conversation rules all chat adapters share, on a recording surface."""

from __future__ import annotations

import io
import json
from pathlib import Path

import aiohttp
import discord
import pytest
from rich.console import Console

from bot.console import say as console_say
from bot.conversation import Conversation, Lines, Surface, decide
from bot.discord_adapter import DiscordBot
from bot.slack import SlackBot, web_client
from bot.terminal import Screen
from commands.dispatch import Dispatcher
from commands.replies import DENIED, Failure, Log, Message, Reply, Result, Step
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


class Recorder(Surface):
    """A surface that writes down what the conversation asked of it (errbot's test backend)."""

    def __init__(self, status_fits: bool = True) -> None:
        self.calls: list[tuple[str, object]] = []
        self.status_fits = status_fits

    async def post_status(self, text: str, user: str) -> None:
        self.calls.append(("post_status", text))

    async def finish_status(self, reply: Result | Failure, took: float) -> bool:
        self.calls.append(("finish_status", reply))
        return self.status_fits

    async def point_to_thread(self, text: str) -> None:
        self.calls.append(("point_to_thread", text))

    async def decided(self, verb: str, user: str, text: str) -> None:
        self.calls.append(("decided", text))

    async def open_log(self, title: str, interval: float) -> Lines:
        recorder = self

        class Recorded:
            def add(self, line: str) -> None:
                recorder.calls.append(("line", line))

            async def close(self) -> None:
                recorder.calls.append(("close_log", title))

        return Recorded()

    async def say(self, reply: Reply) -> None:
        self.calls.append(("say", reply))

    async def whisper(self, reply: Reply) -> None:
        self.calls.append(("whisper", reply))


async def stream(*replies: Reply):
    for reply in replies:
        yield reply


async def test_conversation_rules_every_platform_shares():
    lines_only = Recorder()
    await Conversation(lines_only, "logs web", "U1").show(
        stream(Step("\x1b[1mpulling\x1b[0m"), Log("\x1b[32mGET / 200\x1b[0m"))
    )
    assert lines_only.calls == [
        ("post_status", "logs web"),
        ("line", "→ pulling"),
        ("line", "GET / 200"),
        ("close_log", "logs web"),
        ("point_to_thread", "logs web"),
    ]
    refused = Recorder()
    denial = Failure("slack:U1 may not deploy on shop/production", DENIED)
    await Conversation(refused, "deploy shop", "U1").show(stream(denial))
    assert refused.calls == [("whisper", denial)]
    too_big = Recorder(status_fits=False)
    failure = Failure("build failed", log_tail=("\x1b[31merror\x1b[0m",))
    await Conversation(too_big, "deploy shop", "U1").show(stream(Log("building"), failure))
    assert too_big.calls[-3:] == [
        ("finish_status", Failure("build failed", log_tail=("error",))),
        ("say", Failure("build failed", log_tail=("error",))),
        ("point_to_thread", "deploy shop"),
    ]


async def test_a_click_that_decides_nothing_leaves_the_buttons():
    partial = Recorder()
    await decide(partial, "approve", "approve 7", "U2", stream(Message("approval 1 of 2")))
    assert partial.calls == [("whisper", Message("approval 1 of 2"))]
    decisive = Recorder()
    done = Result(True, "shop release 2 is live")
    await decide(decisive, "approve", "approve 7", "U3", stream(Step("running"), done))
    assert decisive.calls == [
        ("decided", "approve 7"),
        ("line", "→ running"),
        ("close_log", "approve 7"),
        ("finish_status", done),
    ]
