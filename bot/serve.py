"""``shipbot serve``: the long-running control plane with whatever chat adapters are configured.

Slack: ``SLACK_BOT_TOKEN`` plus ``SLACK_APP_TOKEN`` (Socket Mode, no inbound port) or
``SLACK_SIGNING_SECRET`` (HTTP mode on ``SHIPBOT_HTTP_HOST``:``SHIPBOT_HTTP_PORT``, default
0.0.0.0:3000, path /slack/events). ``SLACK_API_URL`` points the Web API client elsewhere
(a proxy, or a local fake in tests). ``SHIPBOT_SLACK_WORKERS`` (default 4): how many commands
start their work at once; more wait for a slot, already acknowledged.

Discord: ``DISCORD_TOKEN`` (the bot token); ``DISCORD_GUILD_ID`` for guild commands;
``DISCORD_API_URL`` like ``SLACK_API_URL``. Commands are published with ``shipbot discord
sync``, not on every start.

Git webhooks: ``SHIPBOT_WEBHOOKS=1`` serves /hooks/github, /hooks/gitlab and /hooks/gitea
(bot/webhooks.py) on the same HTTP server as Slack's HTTP mode, or on its own at
``SHIPBOT_HTTP_HOST``:``SHIPBOT_HTTP_PORT``. ``serve(..., routes=[...])`` adds more route sets.

bot/settings.py reads and checks them all.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import signal
import sys
from collections.abc import Awaitable, Iterable
from typing import TYPE_CHECKING

from pydantic import SecretStr

from bot import arenas, heap
from bot.ci_endpoint import add_ci_routes
from bot.console import printer
from bot.self_deploy import announce, beat
from bot.settings import Settings
from bot.slack import SlackBot, web_client
from bot.terminal import Output, output_for
from bot.webhooks import RouteSet, hook_routes, start_http
from commands.dispatch import Dispatcher
from commands.hooks import Receiver
from rooms.root import Root

if TYPE_CHECKING:
    from bot.discord_adapter import DiscordBot

log = logging.getLogger("shipbot.serve")


class ServeError(Exception):
    """The adapters' settings are incomplete; the message says what to set."""


async def housekeeping(root: Root) -> None:
    """The root's periodic work (rooms/), with this process's heartbeat file every round."""
    rounds = [functools.partial(beat, root.plane.home), arenas.trim, heap.FreezeOnce()]
    await root.run(rounds=rounds)


def route_sets(dispatcher: Dispatcher, settings: Settings) -> list[RouteSet]:
    """The HTTP route sets ``shipbot serve`` offers besides Slack's, each an
    ``add_routes(app)``: all served by one server."""
    routes: list[RouteSet] = []
    if settings.webhooks:
        routes.append(hook_routes(Receiver(dispatcher)))
    if settings.ci_endpoint:
        routes.append(functools.partial(add_ci_routes, dispatcher=dispatcher))
    return routes


async def serve(
    control: Root | Dispatcher,
    settings: Settings,
    interval: float = 5.0,
    routes: Iterable[RouteSet] = (),
    console_out: Output | None = None,
) -> None:
    """The adapters ``settings`` configure, and the root's periodic work every ``interval``."""
    root = control if isinstance(control, Root) else Root(control)
    root.interval = interval
    dispatcher = root.dispatcher
    jobs: list[Awaitable[None]] = []
    routes = [*route_sets(dispatcher, settings), *routes]
    http_served = False
    came_up = await asyncio.to_thread(announce, dispatcher)
    if came_up:
        log.warning("%s", came_up)
    if settings.slack_bot_token:
        signing_secret = _reveal(settings.slack_signing_secret)
        bot = SlackBot(
            dispatcher,
            web_client(settings.slack_bot_token.get_secret_value(), settings.slack_api_url),
            signing_secret=signing_secret,
            workers=settings.slack_workers,
        )
        if settings.slack_app_token:
            jobs.append(bot.serve_socket_mode(settings.slack_app_token.get_secret_value()))
            log.warning("slack: Socket Mode")
        elif signing_secret:
            await bot.serve_http(settings.http_host, settings.http_port, routes)
            http_served = True
            log.warning(
                "slack: HTTP mode on %s:%s/slack/events", settings.http_host, settings.http_port
            )
        else:
            raise ServeError(
                "SLACK_BOT_TOKEN is set but neither SLACK_APP_TOKEN (Socket Mode) nor "
                "SLACK_SIGNING_SECRET (HTTP mode) is"
            )
        jobs.append(dispatcher.notifier.run("slack", bot.deliver))
    if settings.discord_token:
        discord_bot = discord(dispatcher, settings)
        jobs.append(discord_bot.client.start(settings.discord_token.get_secret_value()))
        jobs.append(dispatcher.notifier.run("discord", discord_bot.deliver))
        log.warning("discord: gateway")
    if routes and not http_served:
        await start_http(settings.http_host, settings.http_port, routes)
        log.warning("http: %s:%s", settings.http_host, settings.http_port)
    if not jobs:
        log.warning(
            "no chat adapter configured (SLACK_BOT_TOKEN, DISCORD_TOKEN); housekeeping only, "
            "notifications routed to `platform: console` are printed here"
        )
    # routes to the console are delivered as readable text on serve's own output
    jobs.append(dispatcher.notifier.run("console", printer(console_out or output_for())))
    await asyncio.gather(housekeeping(root), *jobs)


def _reveal(secret: SecretStr | None) -> str | None:
    return secret.get_secret_value() if secret else None


def discord(dispatcher: Dispatcher, settings: Settings) -> DiscordBot:
    from bot.discord_adapter import DiscordBot  # noqa: PLC0415 (discord.py costs ~8 MB; only when used)

    return DiscordBot(
        dispatcher, guild_id=settings.discord_guild_id, api_base=settings.discord_api_url
    )


async def sync_discord(dispatcher: Dispatcher, settings: Settings) -> list[str]:
    """Publish the application commands (to DISCORD_GUILD_ID, or globally)."""
    if not settings.discord_token:
        raise ServeError("set DISCORD_TOKEN to the bot token first")
    bot = discord(dispatcher, settings)
    await bot.client.login(settings.discord_token.get_secret_value())
    try:
        return [command.name for command in await bot.sync_commands()]
    finally:
        await bot.client.close()


def run(root: Root, settings: Settings, interval: float) -> None:
    """Serve until SIGTERM or SIGINT."""

    async def main() -> None:
        task = asyncio.ensure_future(serve(root, settings, interval))
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, task.cancel)
        with contextlib.suppress(asyncio.CancelledError):
            await task

    asyncio.run(main())


def command(interval: float) -> int:
    """``shipbot serve``: the exit status once it stops (1 when the settings are incomplete)."""
    from bot.chat_line import settings_of  # noqa: PLC0415 (the command line's own helpers)
    from bot.console import root_here  # noqa: PLC0415

    arenas.cap()  # before any worker thread allocates
    settings = settings_of(Settings)
    root = root_here()
    dispatcher = root.dispatcher
    log.warning("shipbot serve: control plane up (store %s)", dispatcher.engine.store.path)
    try:
        run(root, settings, interval)
    except ServeError as exc:
        print(f"❌ {exc}", file=sys.stderr)
        return 1
    finally:
        dispatcher.close()
    return 0
