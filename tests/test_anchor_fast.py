"""The deploy's message is anchored by the dispatcher's neutral step, so the guard's later word
edits it and answers under it on Discord as on Slack (tests/test_guard_fast.py drives Slack
through the same step): the real dispatcher on the in-memory swarm, the Discord adapter
against the local fake REST API."""

from __future__ import annotations

import discord
import pytest

from bot.discord_adapter import DiscordBot
from commands.dispatch import Dispatcher
from core.swarm.testing import UNHEALTHY, FakeSwarm
from tests import test_guard_fast as guard
from tests.chat import result, say
from tests.fake_discord_api import CHANNEL_ID, FakeDiscord
from tests.test_discord_adapter import ADMIN, slash, until
from tests.test_guard_fast import rounds, the_watch

fake, bot = guard.fake, guard.bot  # the guard tests' swarm and dispatcher, web registered
TITLE = "the guard rolled web back on production from release 2 to release 1"


@pytest.fixture
async def discord_chat(bot: Dispatcher, monkeypatch):
    api = await FakeDiscord().start()
    monkeypatch.setattr(discord.http.Route, "BASE", api.base)
    chat = DiscordBot(bot, interval=0.2)
    await chat.client.login("fake-token")
    yield api, chat
    await chat.client.close()
    await api.stop()


async def test_on_discord_the_guard_edits_the_deploy_message_and_answers_under_it(
    bot: Dispatcher, fake: FakeSwarm, discord_chat
):
    api, chat = discord_chat
    admins = ["console:alice", f"discord:{ADMIN}"]
    bot.config = bot.config.model_copy(update={"admins": admins})
    assert result(await say(bot, "deploy web 1")).ok
    payload = slash("deploy", ADMIN, app="web", ref="2")
    chat.client._connection.parsers["INTERACTION_CREATE"](payload)

    def shown() -> list:
        return [
            c
            for c in api.of("PATCH", f"/webhooks/{payload['application_id']}/{payload['token']}")
            if "release 2 is live" in str(c.body.get("embeds"))
        ]

    status_id = (await until(shown, timeout=20))[-1].path.rsplit("/", 1)[-1]
    await until(lambda: bot.engine.store.guards("web", "production")[0]["anchor"], 10)
    assert bot.engine.store.guards("web", "production")[0]["anchor"] == status_id
    fake.behave("web:2", UNHEALTHY)
    await rounds(the_watch(bot), fake, 30)
    assert await bot.notifier.deliver_due("discord", chat.deliver) == 1
    (edit,) = api.of("PATCH", f"/channels/{CHANNEL_ID}/messages/{status_id}")
    assert TITLE in edit.body["embeds"][0]["title"]
    (answer,) = [
        c
        for c in api.of("POST", f"/channels/{CHANNEL_ID}/messages")
        if TITLE in str(c.body.get("embeds"))
    ]
    assert str(answer.body["message_reference"]["message_id"]) == status_id


async def test_a_deploy_nobody_shows_is_not_anchored(bot: Dispatcher, fake: FakeSwarm):
    assert result(await say(bot, "deploy web 1")).ok  # the console shows no message
    assert bot.engine.store.guards("web", "production")[0]["anchor"] is None
