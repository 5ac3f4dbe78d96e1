"""``shipbot``'s commands (Typer): the console chat, one-shot chat messages and the version.

``bot.cli`` is the entry point; it loads this module for every command but ``--version``
and ``health``, which answer with the standard library alone."""

from __future__ import annotations

import asyncio
from typing import Annotated

import typer

from bot.chat_line import chat as send
from bot.chat_line import interruptible, settings_of, start_logging, user_of
from bot.console import open_here, repl
from bot.pipelines_cli import ci_app, registry_app, self_app
from bot.self_deploy import MAX_AGE_SECONDS, SERVE_INTERVAL, home_folder
from bot.self_deploy import health as check_health
from bot.settings import Settings
from bot.terminal import output_for

AsUser = Annotated[
    str | None, typer.Option("--as", help="Who you are, e.g. console:alice (default: $USER).")
]
# what `shipbot --help` says first: for people, not the module's notes above
HELP = (
    "shipbot: deployments to Docker Swarm from chat. `shipbot console` opens a local chat "
    "against this machine's Docker engine (type `help` there); `shipbot chat TEXT` sends "
    "one message; `shipbot serve` runs the bot for Slack and Discord."
)
app = typer.Typer(
    add_completion=False, no_args_is_help=True, help=HELP, rich_markup_mode="markdown"
)


def _version(show: bool) -> None:
    if show:
        from importlib.metadata import version

        typer.echo(f"shipbot {version('shipbot')}")
        raise typer.Exit()


@app.callback()
def main_options(
    show_version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version.")
    ] = False,
) -> None:
    start_logging()


@app.command()
def console(
    as_user: AsUser = None,
) -> None:
    """Open the console chat against the local Docker engine."""
    dispatcher = open_here()
    try:
        interruptible(repl(dispatcher, output_for(), user_of(as_user)))
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
    raise typer.Exit(send(text, as_user, as_json))


@app.command()
def serve(
    interval: Annotated[
        float, typer.Option(help="Seconds between housekeeping rounds.")
    ] = SERVE_INTERVAL,
) -> None:
    """Run the control plane with the chat adapters configured in the environment."""
    from bot.serve import command  # the adapters' libraries load only to serve

    raise typer.Exit(command(interval))


discord_app = typer.Typer(help="Discord housekeeping.", rich_markup_mode="markdown")
app.add_typer(discord_app, name="discord")


@discord_app.command("sync")
def discord_sync() -> None:
    """Publish /deploy, /rollback and /ship to DISCORD_GUILD_ID (instant) or globally."""
    from bot.serve import ServeError, sync_discord

    settings = settings_of(Settings)
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
