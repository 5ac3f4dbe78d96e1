"""Notifications without a chat platform: routes to `platform: console` are printed by
`shipbot serve` as readable text and marked sent, and `notifications` lists them."""

from __future__ import annotations

import asyncio
import contextlib
import io
import time
from pathlib import Path

import pytest

from bot.serve import serve
from bot.settings import Settings
from bot.terminal import PlainLines
from commands.catalog import outbox as outbox_commands
from commands.dispatch import Dispatcher
from commands.replies import Failure, Message, Result
from commands.request import ChatRequest
from commands.watching import watchers
from core.config import AlertsConfig, ControlConfig, NotifyRoute
from core.engine import Engine
from core.secrets import Vault
from core.store import Store
from core.swarm.servers import Servers
from core.swarm.testing import HEALTHY, UNHEALTHY, FakeSwarm
from tests.chat import result, say
from tests.clock import SwarmSteps
from tests.fake_plane import WEB, fast_swarm

ALERTS = AlertsConfig(
    crash_restarts=3, crash_window_seconds=120, recover_seconds=20, usage_image=None,
    guard_seconds=0,
)  # fmt: skip
ROUTES = [NotifyRoute(platform="console", channel="ops", kinds=["alerts"])]


@pytest.fixture
def fake() -> FakeSwarm:
    swarm = fast_swarm()
    return swarm


@pytest.fixture
async def bot(tmp_path: Path, fake: FakeSwarm):
    home = tmp_path / "home"
    home.mkdir()
    folder = tmp_path / "web"
    folder.mkdir()
    (folder / "app.yml").write_text(WEB)
    engine = Engine(
        Store(home / "shipbot.db"),
        servers=Servers({"local": lambda: fake}),
        home=home,
        vault=Vault.open(home),
        clock=SwarmSteps(fake),
    )
    dispatcher = Dispatcher(
        engine, ControlConfig(admins=["console:alice"], notify=ROUTES, alerts=ALERTS)
    )
    assert result(await say(dispatcher, f"apps add web --path {folder}")).ok
    yield dispatcher
    dispatcher.close()


async def crash_loop_and_recovery(bot: Dispatcher, fake: FakeSwarm) -> None:
    assert result(await say(bot, "deploy web 1")).ok
    (watch,) = watchers(bot.engine.plane, bot.config, bot.notifier)
    fake.behave("web:1", UNHEALTHY)
    for _ in range(40):
        fake.step()
        await watch.check()
    fake.behave("web:1", HEALTHY)
    for _ in range(40):
        fake.step()
        await watch.check()


async def test_serve_prints_console_routes_and_notifications_lists_them(bot, fake):
    await crash_loop_and_recovery(bot, fake)
    printed = io.StringIO()
    running = asyncio.create_task(
        serve(bot, Settings(), interval=0.05, console_out=PlainLines(printed))
    )
    try:
        deadline = time.monotonic() + 20
        while printed.getvalue().count("── notification for console:ops ──") < 2:
            assert time.monotonic() < deadline, printed.getvalue()
            await asyncio.sleep(0.05)
    finally:
        running.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await running
    text = printed.getvalue()
    assert "🔁 web (production) on local is crash-looping: " in text
    assert "✅ web (production) on local recovered: 2/2 running" in text
    assert text.index("crash-looping") < text.index("recovered")
    rows = bot.engine.store.recent_messages("alerts")
    assert [r["status"] for r in rows] == ["sent", "sent"]

    listed = await say(bot, "notifications --kind alerts")
    heads = [r.text for r in listed if isinstance(r, Message)]
    assert len(heads) == 2 and all("alerts → console:ops (sent)" in h for h in heads), heads
    posts = [r.title for r in listed if isinstance(r, Result)]
    assert posts[0].startswith("🔁 web (production) on local is crash-looping: ")
    assert posts[1].startswith("✅ web (production) on local recovered")


async def test_notifications_bad_kind_and_follow_outside_the_console(bot):
    bad = await say(bot, "notifications --kind nosuch")
    assert [r.message for r in bad if isinstance(r, Failure)] == [
        "no kind 'nosuch' of notification: use one of deploys, alerts, backups, certs, digest"
    ]
    assert [r.text for r in await say(bot, "notifications")] == ["no notifications yet"]


async def test_follow_in_the_console_shows_notifications_as_they_are_queued(bot, monkeypatch):
    monkeypatch.setattr(outbox_commands, "FOLLOW_SECONDS", 0.01)
    request = ChatRequest("console", "console:alice", "console", "notifications --follow")

    async def until_second() -> list[str]:
        seen: list[str] = []
        async with contextlib.aclosing(bot.handle(request)) as replies:
            async for reply in replies:
                if isinstance(reply, Message):
                    seen.append(reply.text)
                    if reply.text == "db is slow":  # the first is shown: queue the next
                        bot.notifier.publish("alerts", "web", None, Message("db is back"))
                    if reply.text == "db is back":
                        return seen
        return seen

    bot.notifier.publish("alerts", "web", None, Message("db is slow"))
    seen = await asyncio.wait_for(until_second(), timeout=10)
    assert seen[1::2] == ["db is slow", "db is back"]
    assert all("alerts → console:ops (pending)" in head for head in seen[0::2]), seen
