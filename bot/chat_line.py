"""``shipbot chat TEXT [--as USER] [--json]`` without Typer: one chat message, the settings
every command reads, and the exit status.

The entry point (bot/cli.py) runs that spelling here, so a one-shot chat pays neither Typer
nor Click at start; the Typer command (bot/cli_app.py) runs the same functions, so both say,
fail and exit alike. Any other spelling (``--help``, an unknown option) goes to Typer.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import sys
from collections.abc import Coroutine
from typing import Any, NoReturn, TypeVar

from bot.console import open_here, say
from bot.settings import CommonSettings, SettingsError, load
from bot.terminal import output_for
from commands.replies import exit_code
from commands.request import stop_children

T = TypeVar("T")
S = TypeVar("S", bound=CommonSettings)
# How long a cancelled command may take to release its lock and write its audit entry
# before the process leaves anyway.
STOP_GRACE_SECONDS = 1.5


def fail(message: str) -> NoReturn:
    """``❌ message`` on stderr, and exit 1."""
    print(f"❌ {message}", file=sys.stderr, flush=True)
    raise SystemExit(1)


def settings_of(model: type[S]) -> S:
    try:
        return load(model)
    except SettingsError as exc:
        fail(str(exc))


def start_logging() -> None:
    settings = settings_of(CommonSettings)
    logging.basicConfig(
        level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )


def user_of(value: str | None) -> str:
    user = value or f"console:{settings_of(CommonSettings).user}"
    return user if ":" in user else f"console:{user}"


def _leave(code: int) -> None:
    """Exit now: worker threads may be stuck in blocking calls, and must not be waited for."""
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):
            stream.flush()
    os._exit(code)


def interruptible(work: Coroutine[Any, Any, T]) -> T:
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


def chat(text: str, as_user: str | None, as_json: bool) -> int:
    """Send ``text``; 0 on success, 1 when the command failed, 2 on a usage error."""
    dispatcher = open_here()
    try:
        out = output_for(json=as_json)
        replies = interruptible(say(dispatcher, out, user_of(as_user), text))
    finally:
        dispatcher.close()
    return exit_code(replies)


def spelled(argv: list[str]) -> tuple[str, str | None, bool] | None:
    """(text, --as, --json) of ``chat``'s arguments in their plain spelling; None for any
    other (Typer then parses it, and says what is wrong)."""
    text: str | None = None
    user: str | None = None
    as_json = False
    words = iter(argv)
    for word in words:
        if word == "--json" and not as_json:
            as_json = True
        elif word == "--as" and user is None:
            user = next(words, None)
            if user is None or user.startswith("-"):
                return None
        elif word.startswith("--as=") and user is None:
            user = word.removeprefix("--as=")
        elif not word.startswith("-") and text is None:
            text = word
        else:
            return None
    return None if text is None else (text, user, as_json)


def run(argv: list[str]) -> int | None:
    """``shipbot chat …``'s exit status, or None when Typer should read ``argv``."""
    parsed = spelled(argv)
    if parsed is None:
        return None
    start_logging()
    return chat(*parsed)
