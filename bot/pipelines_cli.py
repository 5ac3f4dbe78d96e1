"""``shipbot registry …`` and ``shipbot ci token …``: made on the host, never in a channel,
so a registry password or a CI token is not left in chat history."""

from __future__ import annotations

import asyncio
import getpass
import sys
from typing import Annotated

import typer

from bot.console import open_here, say
from bot.self_deploy import SELF_APP, self_deploy_text
from bot.terminal import output_for
from commands.pipelines import (
    PipelineError,
    create_ci_token,
    registry_login,
    registry_logout,
    revoke_ci_token,
    scope_of,
)
from commands.replies import exit_code

registry_app = typer.Typer(
    help="Registry logins that registry images are pulled with.", rich_markup_mode="markdown"
)
ci_app = typer.Typer(
    help="Tokens a CI job deploys with (POST /ci/deploy).", rich_markup_mode="markdown"
)
token_app = typer.Typer(help="Create, revoke and list CI tokens.", rich_markup_mode="markdown")
ci_app.add_typer(token_app, name="token")

AppOption = Annotated[
    str | None, typer.Option("--app", help="Only for this app (default: every app).")
]


def _by() -> str:
    return f"cli:{getpass.getuser()}"


@registry_app.command("login")
def login(
    registry: Annotated[str, typer.Argument(help="The registry host, e.g. ghcr.io.")],
    user: Annotated[str, typer.Option("--user", help="The registry user name.")],
    app: AppOption = None,
) -> None:
    """Store a login, kept encrypted.

    The password or token is read from stdin (prompted, not echoed, on a terminal)."""
    if sys.stdin.isatty():
        password = getpass.getpass(f"password or token for {user} at {registry} (not echoed): ")
    else:
        password = sys.stdin.readline().rstrip("\n")
    bot = open_here()
    try:
        done = registry_login(
            bot, registry=registry, username=user, password=password, app=app, by=_by()
        )
        typer.echo(f"✅ {done}")
    except PipelineError as exc:
        typer.echo(f"❌ {exc}", err=True)
        raise typer.Exit(1) from exc
    finally:
        bot.close()


@registry_app.command("logout")
def logout(registry: str, app: AppOption = None) -> None:
    """Forget a login."""
    bot = open_here()
    try:
        gone = registry_logout(bot, registry=registry, app=app, by=_by())
    except PipelineError as exc:
        typer.echo(f"❌ {exc}", err=True)
        raise typer.Exit(1) from exc
    finally:
        bot.close()
    typer.echo("✅ forgotten" if gone else "no such login")
    raise typer.Exit(0 if gone else 1)


@registry_app.command("list")
def logins() -> None:
    """Who logs in where (never the passwords)."""
    bot = open_here()
    try:
        for row in bot.engine.store.registry_logins():
            typer.echo(f"{row['registry']}  {row['username']}  app={row['app']}")
    finally:
        bot.close()


@token_app.command("create")
def token_create(
    name: str,
    app: Annotated[str | None, typer.Option("--app", help="The one app it deploys.")] = None,
    all_apps: Annotated[
        bool, typer.Option("--all-apps", help="It may deploy every app (say so explicitly).")
    ] = False,
    owner: Annotated[
        str | None,
        typer.Option(
            "--owner",
            help="The person behind its deploys (platform:id), who may not approve them "
            "(default: you).",
        ),
    ] = None,
) -> None:
    """Make a token for ci:NAME (deployer on APP); it is printed once, keep it in CI's secrets."""
    bot = open_here()
    try:
        token = create_ci_token(bot, name=name, app=app, all_apps=all_apps, owner=owner, by=_by())
    except PipelineError as exc:
        typer.echo(f"❌ {exc}", err=True)
        raise typer.Exit(1) from exc
    finally:
        bot.close()
    typer.echo(token)


@token_app.command("revoke")
def token_revoke(name: str) -> None:
    """Revoke a token and the grant it came with."""
    bot = open_here()
    try:
        gone = revoke_ci_token(bot, name=name, by=_by())
    finally:
        bot.close()
    typer.echo("✅ revoked" if gone else "no such token")
    raise typer.Exit(0 if gone else 1)


@token_app.command("list")
def token_list() -> None:
    """The tokens: what each may deploy, whom it speaks for, who made it.

    The tokens themselves are never shown."""
    bot = open_here()
    try:
        for row in bot.engine.store.ci_tokens():
            owner = row.get("owner") or row["created_by"]
            typer.echo(
                f"{row['name']}  scope={scope_of(row)}  owner={owner}  by={row['created_by']}"
            )
    finally:
        bot.close()


self_app = typer.Typer(
    help="shipbot deploying shipbot (the root app.yml).", rich_markup_mode="markdown"
)


@self_app.command("deploy")
def self_deploy(
    ref: Annotated[str | None, typer.Argument(help="A git ref of shipbot's source.")] = None,
    image: Annotated[
        str | None, typer.Option("--image", help="A shipbot image CI pushed to a registry.")
    ] = None,
    as_user: Annotated[str | None, typer.Option("--as", help="Who you are (an admin).")] = None,
    app: Annotated[
        str, typer.Option("--app", help="The name shipbot is registered under.")
    ] = SELF_APP,
) -> None:
    """Upgrade the running bot on its swarm, as `deploy shipbot` would.

    Through the usual path (grant, approval, lock, audit). The new bot posts that it came
    up, and with which version."""
    bot = open_here()
    try:
        out = output_for()
        user = as_user or f"console:{getpass.getuser()}"
        replies = asyncio.run(say(bot, out, user, self_deploy_text(ref, image, app)))
    finally:
        bot.close()
    raise typer.Exit(exit_code(replies))
