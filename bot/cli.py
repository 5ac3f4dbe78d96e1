"""``shipbot``: the console chat, one-shot chat messages and the version."""

from __future__ import annotations

import asyncio
import logging
import os
from importlib.metadata import version
from typing import Annotated

import typer
from rich.console import Console

from bot.console import repl, say
from bot.serve import ServeError, sync_discord
from bot.serve import run as run_server
from commands.dispatch import Dispatcher, StartError
from commands.replies import exit_code

AsUser = Annotated[
    str | None, typer.Option("--as", help="Who you are, e.g. console:alice (default: $USER).")
]
app = typer.Typer(add_completion=False, no_args_is_help=True, help=__doc__)


def _user(value: str | None) -> str:
    user = value or f"console:{os.environ.get('USER', 'root')}"
    return user if ":" in user else f"console:{user}"


def _open() -> Dispatcher:
    try:
        return Dispatcher.open()
    except StartError as exc:
        typer.echo(f"❌ {exc}", err=True)
        raise typer.Exit(1) from exc


def _version(show: bool) -> None:
    if show:
        typer.echo(f"shipbot {version('shipbot')}")
        raise typer.Exit()


@app.callback()
def main_options(
    show_version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version.")
    ] = False,
) -> None:
    logging.basicConfig(
        level=os.environ.get("SHIPBOT_LOG_LEVEL", "WARNING"),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )


@app.command()
def console(
    as_user: AsUser = None,
) -> None:
    """Open the console chat against the local Docker engine."""
    dispatcher = _open()
    try:
        asyncio.run(repl(dispatcher, Console(), _user(as_user)))
    except KeyboardInterrupt:  # Ctrl-C leaves like Ctrl-D, without a traceback
        typer.echo()
    finally:
        dispatcher.close()


@app.command()
def chat(
    text: Annotated[str, typer.Argument(help='The message, e.g. "deploy hello".')],
    as_user: AsUser = None,
) -> None:
    """Send one chat message; exit 0 on success, 1 when the command failed, 2 on a usage error."""
    dispatcher = _open()
    try:
        replies = asyncio.run(say(dispatcher, Console(), _user(as_user), text))
    finally:
        dispatcher.close()
    raise typer.Exit(exit_code(replies))


@app.command()
def serve(
    interval: Annotated[float, typer.Option(help="Seconds between housekeeping rounds.")] = 5.0,
) -> None:
    """Run the control plane with the chat adapters configured in the environment."""
    dispatcher = _open()
    log = logging.getLogger("shipbot.serve")
    log.warning("shipbot serve: control plane up (store %s)", dispatcher.engine.store.path)
    try:
        run_server(dispatcher, interval)
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
    dispatcher = _open()
    try:
        names = asyncio.run(sync_discord(dispatcher, os.environ))
    except ServeError as exc:
        typer.echo(f"❌ {exc}", err=True)
        raise typer.Exit(1) from exc
    finally:
        dispatcher.close()
    where = (
        f"guild {os.environ['DISCORD_GUILD_ID']}"
        if os.environ.get("DISCORD_GUILD_ID")
        else "all guilds (global commands can take up to an hour to appear)"
    )
    typer.echo(f"✅ synced {', '.join('/' + n for n in names)} to {where}")


def main() -> None:
    app()


if __name__ == "__main__":
    main()
