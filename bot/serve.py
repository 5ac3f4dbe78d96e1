"""``shipbot serve``: the long-running control plane with whatever chat adapters are configured.

Slack: ``SLACK_BOT_TOKEN`` plus ``SLACK_APP_TOKEN`` (Socket Mode, no inbound port) or
``SLACK_SIGNING_SECRET`` (HTTP mode on ``SHIPBOT_HTTP_HOST``:``SHIPBOT_HTTP_PORT``, default
0.0.0.0:3000, path /slack/events). ``SLACK_API_URL`` points the Web API client elsewhere
(a proxy, or a local fake in tests).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
from collections.abc import Awaitable, Mapping

from bot.slack import SlackBot, web_client
from commands.dispatch import Dispatcher

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
    else:
        log.warning("no chat adapter configured (set SLACK_BOT_TOKEN); housekeeping only")
    await asyncio.gather(housekeeping(dispatcher, interval), *jobs)


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
