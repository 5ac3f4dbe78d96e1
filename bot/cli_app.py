"""``shipbot``'s commands (Typer): the console chat, one-shot chat messages and the version.

``bot.cli`` is the entry point; it loads this module for every command but ``--version``
and ``health``, which answer with the standard library alone."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import sys
from collections.abc import Coroutine
from typing import Annotated, Any, TypeVar

import typer

from bot.console import open_here, repl, root_here, say
from bot.pipelines_cli import ci_app, registry_app, self_app
from bot.self_deploy import MAX_AGE_SECONDS, home_folder
from bot.self_deploy import health as check_health
from bot.settings import CommonSettings, Settings, SettingsError, load
from bot.terminal import output_for
from commands.replies import exit_code
from commands.request import stop_children

AsUser = Annotated[
    str | None, typer.Option("--as", help="Who you are, e.g. console:alice (default: $USER).")
]
app = typer.Typer(add_completion=False, no_args_is_help=True, help=__doc__)
T = TypeVar("T")
S = TypeVar("S", bound=CommonSettings)
# How long a cancelled command may take to release its lock and write its audit entry
# before the process leaves anyway.
STOP_GRACE_SECONDS = 1.5


def _load(model: type[S]) -> S:
    try:
        return load(model)
    except SettingsError as exc:
        typer.echo(f"❌ {exc}", err=True)
        raise typer.Exit(1) from exc


def _user(value: str | None) -> str:
    user = value or f"console:{_load(CommonSettings).user}"
    return user if ":" in user else f"console:{user}"


def _version(show: bool) -> None:
    if show:
        from importlib.metadata import version

        typer.echo(f"shipbot {version('shipbot')}")
        raise typer.Exit()


def _leave(code: int) -> None:
    """Exit now: worker threads may be stuck in blocking calls, and must not be waited for."""
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):
            stream.flush()
    os._exit(code)


def _interruptible(work: Coroutine[Any, Any, T]) -> T:
    """Run ``work``; on SIGTERM or SIGINT cancel it, kill the child processes it started and
    leave with 128 + the signal's number."""

    async def main() -> T:
        task = asyncio.ensure_future(work)
        loop = asyncio.get_running_loop()
        received: list[int] = []

        def stop(signum: int) -> None:
            if received:
                return
            received.append(signum)
            loop.call_later(STOP_GRACE_SECONDS, _leave, 128 + signum)
            task.cancel()
            stop_children()

        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stop, signum)
        await asyncio.wait({task})
        if received:
            _leave(128 + received[0])
        return task.result()

    return asyncio.run(main())


@app.callback()
def main_options(
    show_version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version.")
    ] = False,
) -> None:
    settings = _load(CommonSettings)
    logging.basicConfig(
        level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )


@app.command()
def console(
    as_user: AsUser = None,
) -> None:
    """Open the console chat against the local Docker engine."""
    dispatcher = open_here()
    try:
        _interruptible(repl(dispatcher, output_for(), _user(as_user)))
    finally:
        dispatcher.close()


@app.command()
def chat(
    text: Annotated[str, typer.Argument(help='The message, e.g. "deploy hello".')],
    as_user: AsUser = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print each reply as one JSON object per line.")
    ] = False,
) -> None:
    """Send one chat message; exit 0 on success, 1 when the command failed, 2 on a usage error."""
    dispatcher = open_here()
    try:
        out = output_for(json=as_json)
        replies = _interruptible(say(dispatcher, out, _user(as_user), text))
    finally:
        dispatcher.close()
    raise typer.Exit(exit_code(replies))


@app.command()
def serve(
    interval: Annotated[float, typer.Option(help="Seconds between housekeeping rounds.")] = 5.0,
) -> None:
    """Run the control plane with the chat adapters configured in the environment."""
    from bot.serve import ServeError  # the adapters' libraries load only to serve
    from bot.serve import run as run_server

    settings = _load(Settings)
    root = root_here()
    dispatcher = root.dispatcher
    log = logging.getLogger("shipbot.serve")
    log.warning("shipbot serve: control plane up (store %s)", dispatcher.engine.store.path)
    try:
        run_server(root, settings, interval)
    except ServeError as exc:
        typer.echo(f"❌ {exc}", err=True)
        raise typer.Exit(1) from exc
    finally:
        dispatcher.close()


discord_app = typer.Typer(help="Discord housekeeping.")
app.add_typer(discord_app, name="discord")


@discord_app.command("sync")
def discord_sync() -> None:
    """Publish /deploy, /rollback and /ship to DISCORD_GUILD_ID (instant) or globally."""
    from bot.serve import ServeError, sync_discord

    settings = _load(Settings)
    dispatcher = open_here()
    try:
        names = asyncio.run(sync_discord(dispatcher, settings))
    except ServeError as exc:
        typer.echo(f"❌ {exc}", err=True)
        raise typer.Exit(1) from exc
    finally:
        dispatcher.close()
    where = (
        f"guild {settings.discord_guild_id}"
        if settings.discord_guild_id
        else "all guilds (global commands can take up to an hour to appear)"
    )
    typer.echo(f"✅ synced {', '.join('/' + n for n in names)} to {where}")


@app.command()
def health(
    max_age: Annotated[
        float, typer.Option(help="Seconds after which a silent `shipbot serve` is unhealthy.")
    ] = MAX_AGE_SECONDS,
) -> None:
    """Exit 0 while `shipbot serve` beats (the image's HEALTHCHECK), 1 otherwise."""
    ok, text = check_health(home_folder(), max_age)
    typer.echo(("✅ " if ok else "❌ ") + text, err=not ok)
    raise typer.Exit(0 if ok else 1)


app.add_typer(registry_app, name="registry")
app.add_typer(ci_app, name="ci")
app.add_typer(self_app, name="self")
