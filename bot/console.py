"""The console chat: the same commands as Slack and Discord, typed on a terminal."""

from __future__ import annotations

import asyncio
import getpass
import sys

from rich.console import Console

from bot.terminal import render
from commands.dispatch import ChatRequest, Dispatcher, needs_secret
from commands.replies import Reply

PROMPT = "shipbot> "
PLATFORM = CHANNEL = "console"
EXPIRY_CHECK_SECONDS = 5.0


def read_secret(prompt: str) -> str:
    """Without echo on a terminal; from one line of stdin when piped."""
    if sys.stdin.isatty():
        return getpass.getpass(prompt)
    return sys.stdin.readline().rstrip("\n")


async def say(dispatcher: Dispatcher, console: Console, user: str, text: str) -> list[Reply]:
    """Send one message and render every reply as it arrives."""
    show_expired(dispatcher, console)
    prompt = needs_secret(text)
    secret = await asyncio.to_thread(read_secret, prompt) if prompt else None
    replies = []
    async for reply in dispatcher.handle(ChatRequest(PLATFORM, user, CHANNEL, text, secret)):
        render(console, reply)
        replies.append(reply)
    return replies


def show_expired(dispatcher: Dispatcher, console: Console) -> None:
    for platform, _channel, message in dispatcher.expire_due():
        if platform == PLATFORM:
            render(console, message)


async def _watch_expiry(dispatcher: Dispatcher, console: Console) -> None:
    while True:
        await asyncio.sleep(EXPIRY_CHECK_SECONDS)
        show_expired(dispatcher, console)


async def repl(dispatcher: Dispatcher, console: Console, user: str) -> None:
    console.print(f"shipbot console as [bold]{user}[/bold]: type `help`, Ctrl-D to leave")
    watcher = asyncio.create_task(_watch_expiry(dispatcher, console))
    try:
        while True:
            try:
                text = await asyncio.to_thread(input, PROMPT)
            except EOFError:
                console.print()
                return
            if text.strip() in {"exit", "quit"}:
                return
            if text.strip():
                await say(dispatcher, console, user, text)
    finally:
        watcher.cancel()
