"""``shipbot serve``: the long-running control plane with whatever chat adapters are configured.

Slack: ``SLACK_BOT_TOKEN`` plus ``SLACK_APP_TOKEN`` (Socket Mode, no inbound port) or
``SLACK_SIGNING_SECRET`` (HTTP mode on ``SHIPBOT_HTTP_HOST``:``SHIPBOT_HTTP_PORT``, default
0.0.0.0:3000, path /slack/events). ``SLACK_API_URL`` points the Web API client elsewhere
(a proxy, or a local fake in tests).

Discord: ``DISCORD_TOKEN`` (the bot token); ``DISCORD_GUILD_ID`` for guild commands;
``DISCORD_API_URL`` like ``SLACK_API_URL``. Commands are published with ``shipbot discord
sync``, not on every start.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
from collections.abc import Awaitable, Mapping
from typing import TYPE_CHECKING

from bot.slack import SlackBot, web_client
from commands.dispatch import Dispatcher

if TYPE_CHECKING:
    from bot.discord_adapter import DiscordBot

log = logging.getLogger("shipbot.serve")


class ServeError(Exception):
    """The adapters' settings are incomplete; the message says what to set."""


async def housekeeping(dispatcher: Dispatcher, interval: float) -> None:
    """Expire unanswered approval requests (their notices go through the outbox)."""
    while True:
        for platform, channel, message in dispatcher.expire_due():
            log.info("%s:%s %s", platform, channel, getattr(message, "text", message))
        await asyncio.sleep(interval)


async def serve(dispatcher: Dispatcher, env: Mapping[str, str], interval: float = 5.0) -> None:
    jobs: list[Awaitable[None]] = []
    if env.get("SLACK_BOT_TOKEN"):
        bot = SlackBot(
            dispatcher,
            web_client(env["SLACK_BOT_TOKEN"], env.get("SLACK_API_URL")),
            signing_secret=env.get("SLACK_SIGNING_SECRET"),
        )
        if env.get("SLACK_APP_TOKEN"):
            jobs.append(bot.serve_socket_mode(env["SLACK_APP_TOKEN"]))
            log.warning("slack: Socket Mode")
        elif env.get("SLACK_SIGNING_SECRET"):
            host = env.get("SHIPBOT_HTTP_HOST", "0.0.0.0")  # noqa: S104 (Slack must reach it)
            port = int(env.get("SHIPBOT_HTTP_PORT", "3000"))
            await bot.serve_http(host, port)
            log.warning("slack: HTTP mode on %s:%s/slack/events", host, port)
        else:
            raise ServeError(
                "SLACK_BOT_TOKEN is set but neither SLACK_APP_TOKEN (Socket Mode) nor "
                "SLACK_SIGNING_SECRET (HTTP mode) is"
            )
        jobs.append(dispatcher.notifier.run("slack", bot.deliver))
    if env.get("DISCORD_TOKEN"):
        discord_bot = discord_from_env(dispatcher, env)
        jobs.append(discord_bot.client.start(env["DISCORD_TOKEN"]))
        jobs.append(dispatcher.notifier.run("discord", discord_bot.deliver))
        log.warning("discord: gateway")
    if not jobs:
        log.warning(
            "no chat adapter configured (SLACK_BOT_TOKEN, DISCORD_TOKEN); housekeeping only"
        )
    await asyncio.gather(housekeeping(dispatcher, interval), *jobs)


def discord_from_env(dispatcher: Dispatcher, env: Mapping[str, str]) -> DiscordBot:
    from bot.discord_adapter import DiscordBot  # noqa: PLC0415 (discord.py costs ~8 MB; only when used)

    guild = env.get("DISCORD_GUILD_ID")
    if guild is not None and not guild.isdigit():
        raise ServeError(f"DISCORD_GUILD_ID must be a number, got {guild!r}")
    return DiscordBot(
        dispatcher, guild_id=int(guild) if guild else None, api_base=env.get("DISCORD_API_URL")
    )


async def sync_discord(dispatcher: Dispatcher, env: Mapping[str, str]) -> list[str]:
    """Publish the application commands (to DISCORD_GUILD_ID, or globally)."""
    if not env.get("DISCORD_TOKEN"):
        raise ServeError("set DISCORD_TOKEN to the bot token first")
    bot = discord_from_env(dispatcher, env)
    await bot.client.login(env["DISCORD_TOKEN"])
    try:
        return [command.name for command in await bot.sync_commands()]
    finally:
        await bot.client.close()


def run(dispatcher: Dispatcher, interval: float) -> None:
    """Serve until SIGTERM or SIGINT."""

    async def main() -> None:
        task = asyncio.ensure_future(serve(dispatcher, os.environ, interval))
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, task.cancel)
        with contextlib.suppress(asyncio.CancelledError):
            await task

    asyncio.run(main())
